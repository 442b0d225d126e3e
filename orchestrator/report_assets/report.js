// Hovering a task highlights it in the graph, the timeline and the details at once;
// clicking one opens its details. The report reads fine without this.
(() => {
  "use strict";
  let lit = [];
  const light = (id) => {
    lit.forEach((el) => el.classList.remove("lit"));
    lit = id === null ? [] : Array.from(document.querySelectorAll("[data-task-id]"))
      .filter((el) => el.getAttribute("data-task-id") === id);
    lit.forEach((el) => el.classList.add("lit"));
  };
  document.addEventListener("mouseover", (event) => {
    const el = event.target.closest ? event.target.closest("[data-task-id]") : null;
    const id = el ? el.getAttribute("data-task-id") : null;
    if (lit.length === 0 ? id !== null : lit[0].getAttribute("data-task-id") !== id) light(id);
  });
  document.addEventListener("click", (event) => {
    const link = event.target.closest ? event.target.closest("a[href^='#']") : null;
    const target = link ? document.getElementById(link.getAttribute("href").slice(1)) : null;
    if (target && target.tagName === "DETAILS") target.open = true;
  });
  document.documentElement.setAttribute("data-report", "ready");
})();
