// yiwang's own small behaviours (no inline scripts: the Content-Security-Policy forbids them).
document.addEventListener("change", (event) => {
  const el = event.target;
  if (el instanceof HTMLSelectElement && el.hasAttribute("data-autosubmit") && el.form) {
    el.form.requestSubmit();
  }
});

// Forms re-rendered with their (Chinese) errors and refusal pages come back as 4xx: show them in
// place, as a full page load would, instead of htmx's default of ignoring the answer.
document.addEventListener("htmx:beforeSwap", (event) => {
  if ([400, 403, 404, 409, 422].includes(event.detail.xhr.status)) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
