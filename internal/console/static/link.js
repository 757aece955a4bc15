// Reads the one-time token from the link's fragment (never sent to the server, so never in
// an access log), clears it from the address bar and history, and submits the sign-in form.
(function () {
  var token = decodeURIComponent(location.hash.replace(/^#/, ''));
  if (!token) return;
  history.replaceState(null, '', location.pathname);
  document.getElementById('token').value = token;
  document.getElementById('linkform').submit();
})();
