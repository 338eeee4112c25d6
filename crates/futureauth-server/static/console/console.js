// FutureAuth Console: copy buttons, confirmations, clickable rows. No framework, no build.
"use strict";
document.addEventListener("click", async (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const field = document.querySelector(copy.dataset.copy);
    if (!field) return;
    field.select();
    let ok = false;
    try {
      await navigator.clipboard.writeText(field.value);
      ok = true;
    } catch (_) {
      ok = document.execCommand && document.execCommand("copy");
    }
    copy.textContent = ok ? "Copied ✓" : "Press Ctrl+C";
    copy.classList.add("copied");
    setTimeout(() => { copy.textContent = "Copy"; copy.classList.remove("copied"); }, 2500);
    return;
  }
  const row = event.target.closest("tr[data-href]");
  if (row && !event.target.closest("a, button, form")) {
    window.location.href = row.dataset.href;
  }
});
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});
