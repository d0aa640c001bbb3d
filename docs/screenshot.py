"""Makes assets/screenshot.png for the README: the app, on the stand-in API, answering with maths and code.

Run from the repository root: python docs/screenshot.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.app_process import CHROMIUM, CHROMIUM_ARGS, ROOT, AppProcess  # noqa: E402
from tests.fake_api import FakeAPI, Reply  # noqa: E402

ANSWER = """For real vectors $u$ and $v$, the Cauchy–Schwarz inequality says

$$|\\langle u, v\\rangle| \\le \\|u\\|\\,\\|v\\|$$

**Example.** Take $u = (1, 2)$ and $v = (3, 4)$: then $\\langle u, v\\rangle = 11$ and
$\\|u\\|\\,\\|v\\| = \\sqrt{5}\\cdot 5 \\approx 11.18$, so the bound holds.

```python
import math
u, v = (1, 2), (3, 4)
dot = sum(a * b for a, b in zip(u, v))
print(dot <= math.hypot(*u) * math.hypot(*v))  # True
```"""


def main() -> None:
    with FakeAPI() as api, tempfile.TemporaryDirectory() as folder:
        api.default = Reply(text=ANSWER, delay=0.01)
        app = AppProcess(Path(folder) / "app.log", AIMLAPI_BASE_URL=api.base_url, AIMLAPI_KEY="screenshot").start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                page.goto(app.url)
                box = page.locator("#chat-input textarea")
                box.fill("Explain the Cauchy–Schwarz inequality with one worked example.")
                box.press("Enter")
                page.get_by_text("tokens/s").wait_for(timeout=20_000)
                page.screenshot(path=str(ROOT / "assets" / "screenshot.png"))
                browser.close()
        finally:
            app.stop()


if __name__ == "__main__":
    main()
