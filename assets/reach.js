() => {
  // Phones: the description and the saved-chats column fold away; the "Chats and about" button brings them back.
  window.toggleMore = () => {
    const open = document.body.classList.toggle("show-more");
    document.querySelector("#more-toggle")?.setAttribute("aria-expanded", String(open));
  };
  document.querySelector("#more-toggle")?.setAttribute("aria-expanded", "false");
  // A notice's title is already the button that folds it; Gradio nests an unnamed arrow button inside it.
  // Take the inner one out of the tab order and the accessibility tree so the title is the one control.
  const tidy = () => {
    for (const arrow of document.querySelectorAll(".thought-group .title button:not([tabindex='-1'])")) {
      arrow.tabIndex = -1;
      arrow.setAttribute("aria-hidden", "true");
    }
  };
  new MutationObserver(tidy).observe(document.body, { childList: true, subtree: true });
  tidy();
}
