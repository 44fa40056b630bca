// Back from Stripe Checkout: ask Stripe (through our POST, with its CSRF token) whether the
// payment went through, once. The page's GET changes nothing; without script the same button
// is there to press.
(function () {
  const form = document.getElementById("funding-check");
  if (!form || form.dataset.autoCheck !== "1") return;
  const status = document.getElementById("funding-check-status");
  if (status) status.textContent = "Checking your payment with Stripe…";
  form.requestSubmit ? form.requestSubmit() : form.submit();
})();
