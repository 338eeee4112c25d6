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
// Live preview of the message templates: the same literal substitution as the server.
(() => {
  const form = document.getElementById("templates-form");
  if (!form) return;
  const project = form.dataset.project || "";
  const fill = (t) => t.replace(/\{\{ ?code ?\}\}/g, "4f7k2q").replace(/\{\{ ?project ?\}\}/g, project);
  const update = () => {
    form.querySelectorAll("[data-preview]").forEach((field) => {
      const target = document.querySelector(field.dataset.preview);
      const text = field.value.trim() === "" ? field.dataset.default : field.value;
      if (target) target.textContent = fill(text);
    });
    const sms = document.getElementById("preview-sms");
    const count = document.getElementById("sms-length");
    if (sms && count) count.textContent = `Preview: ${sms.textContent.length} characters.`;
  };
  form.addEventListener("input", update);
  update();
})();
