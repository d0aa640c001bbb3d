() => {
  // Phones: the description and the saved-chats column fold away; the "Chats and about" button brings them back.
  window.toggleMore = () => {
    const open = document.body.classList.toggle("show-more");
    document.querySelector("#more-toggle")?.setAttribute("aria-expanded", String(open));
  };
  document.querySelector("#more-toggle")?.setAttribute("aria-expanded", "false");
  // A notice's title is already the button that folds it; Gradio nests an unnamed arrow button inside it.
  // Take the inner one out of the tab order and the accessibility tree so the title is the one control.
  // The examples are a role=list of buttons; as a group they need no list items.
  const tidy = () => {
    for (const arrow of document.querySelectorAll(".thought-group .title button:not([inert])")) arrow.inert = true;
    for (const list of document.querySelectorAll(".examples[role='list']")) list.setAttribute("role", "group");
    // The message box is labelled only by its placeholder, which Gradio empties after the first message.
    const box = document.querySelector("#chat-input textarea:not([aria-label])");
    if (box?.placeholder) box.setAttribute("aria-label", box.placeholder);
  };
  new MutationObserver(tidy).observe(document.body, { childList: true, subtree: true });
  tidy();
}
