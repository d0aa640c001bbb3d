// The shared page's only script: typeset TeX with the KaTeX that Gradio bundles, and add copy buttons to code.
// The page reads fine without it; maths then stays as its TeX source.
const { copy = "Copy", copied = "Copied" } = document.documentElement.dataset; // in the reader's language
for (const block of document.querySelectorAll("main pre")) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "copy";
  button.textContent = copy;
  button.addEventListener("click", async () => {
    await navigator.clipboard.writeText(block.querySelector("code")?.innerText ?? block.innerText);
    button.textContent = copied;
    setTimeout(() => { button.textContent = copy; }, 1500);
  });
  const wrapper = document.createElement("div");
  wrapper.className = "code-block";
  block.replaceWith(wrapper);
  wrapper.append(block, button);
}

import("./katex.js").then(({ default: katex }) => {
  for (const element of document.querySelectorAll(".math[data-tex]")) {
    const displayMode = element.classList.contains("display");
    katex.render(element.dataset.tex, element, { displayMode, throwOnError: false, trust: false, maxExpand: 1000 });
  }
}).catch((error) => console.warn("maths left as TeX:", error));
