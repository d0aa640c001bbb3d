"""icons: the app's install icons (`/pwa_icon/<size>`, or `/pwa_icon?size=<size>`) at the sizes Gradio's
`/manifest.json` names, each drawn once.

Gradio's own route resized the favicon to any size asked, on the event loop, every time: `/pwa_icon/4000` held
every visitor for 3 s and `/pwa_icon/50000` would ask for 10 GB; 0 or -1 was a 500 with a traceback. This route
sits before Gradio's, draws the two sizes the manifest names in a thread the first time each is asked for, and
answers 404 for any other size.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import anyio
import PIL.Image
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

MANIFEST_SIZES = ("192", "512")  # Gradio 6.31's manifest for a PNG favicon; tests/test_guard.py checks it


def routes(favicon: Path) -> list[BaseRoute]:
    """`/pwa_icon/<size>`: `favicon` as a PNG of `size` pixels square, for the sizes in MANIFEST_SIZES only."""

    @functools.cache
    def drawn(size: int) -> bytes:
        with PIL.Image.open(favicon) as image:
            out = io.BytesIO()
            image.resize((size, size)).save(out, format="PNG")
        return out.getvalue()

    async def icon(request: Request) -> Response:
        size = request.path_params.get("size", request.query_params.get("size"))  # Gradio's reads either
        if size is None:  # the favicon as it is, as Gradio's route answers
            return FileResponse(favicon)
        if size not in MANIFEST_SIZES:
            return PlainTextResponse("Not Found", status_code=404)
        png = await anyio.to_thread.run_sync(drawn, int(size))
        return Response(png, media_type="image/png", headers={"cache-control": "public, max-age=86400"})

    return [Route(path, icon, methods=["GET", "HEAD"]) for path in ("/pwa_icon/{size}", "/pwa_icon")]
