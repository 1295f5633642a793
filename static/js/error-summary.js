// A form sent back with errors: move focus to its error summary, so the problem is read out first
// and each link leads to its field (templates/investigations/_form_errors.html).
document.addEventListener("DOMContentLoaded", () => {
  const summary = document.querySelector("[data-error-summary]");
  if (summary) summary.focus();
  document.querySelectorAll("[data-error-summary] a[href^='#']").forEach((link) => {
    link.addEventListener("click", (event) => {
      const field = document.getElementById(link.getAttribute("href").slice(1));
      if (!field) return;
      event.preventDefault();
      field.focus();
      field.scrollIntoView({ block: "center" });
    });
  });
});
