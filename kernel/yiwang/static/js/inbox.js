// The case inbox (kernel/yiwang/templates/cases/_results.html): "全选" and the count of ticked
// cases for the bulk bar, and a notice while an export is being generated. Without JavaScript
// every box can still be ticked by hand and the export link still downloads.
window.yiwang = window.yiwang || { widgets: {} };
window.yiwang.widgets.inbox = (el) => {
  const root = el.parentElement || document;
  const form = root.querySelector("#bulk-form");
  if (form) {
    const boxes = () => Array.from(form.querySelectorAll('input[type=checkbox][name="ids"]'));
    const all = form.querySelector("input[data-select-all]");
    const out = form.querySelector("output[data-selected]");
    const update = () => {
      const ticked = boxes().filter((b) => b.checked).length;
      if (out) out.textContent = String(ticked);
      if (all) {
        all.checked = ticked > 0 && ticked === boxes().length;
        all.indeterminate = ticked > 0 && ticked < boxes().length;
      }
    };
    if (all) {
      all.addEventListener("change", () => {
        boxes().forEach((b) => { b.checked = all.checked; });
        update();
      });
    }
    form.addEventListener("change", (event) => {
      if (event.target instanceof HTMLInputElement && event.target.name === "ids") update();
    });
    update();
  }
  const busy = el.querySelector("[data-export-busy]");
  // The browser downloads the file in place; the notice stays a few seconds, as long as a large
  // export typically takes, and asking again is harmless.
  const notice = () => {
    if (!busy) return;
    busy.hidden = false;
    window.setTimeout(() => { busy.hidden = true; }, 8000);
  };
  const link = el.querySelector("a[data-export]");
  if (link) link.addEventListener("click", notice);
  const plain = el.querySelector("form[data-export-form]");
  if (plain) plain.addEventListener("submit", notice);
};
