// nocsoc console: confirmation prompts and live updates over Server-Sent
// Events. Pages work without it; it only adds liveness.
(function () {
  'use strict';

  // <form data-confirm="Really?"> asks before submitting.
  document.addEventListener('submit', function (e) {
    var msg = e.target.getAttribute('data-confirm');
    if (msg && !window.confirm(msg)) { e.preventDefault(); }
  });

  var body = document.body;
  if (!body || body.getAttribute('data-live') !== '1' || !window.EventSource) { return; }
  var live = document.getElementById('live');
  var wall = document.getElementById('wall');
  var timer = null, busy = false, again = false;

  // refresh re-draws the wall from the server after a change, so new root
  // causes and folded children appear; one request at a time.
  function refresh() {
    if (!wall) { return; }
    if (busy) { again = true; return; }
    busy = true;
    fetch('/noc/wall' + location.search, { credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) { throw new Error('HTTP ' + r.status); } return r.text(); })
      .then(function (html) { wall.innerHTML = html; })
      .catch(function () { /* the next event or reconnect retries */ })
      .finally(function () { busy = false; if (again) { again = false; schedule(); } });
  }
  function schedule() {
    if (timer) { return; }
    timer = setTimeout(function () { timer = null; refresh(); }, 1000);
  }

  // apply recolours every tile and badge of the check at once.
  function apply(ev) {
    var sel = '[data-check="' + CSS.escape(ev.check) + '"]';
    document.querySelectorAll('.tile' + sel + ', .badge' + sel).forEach(function (el) {
      el.className = el.className.replace(/\bst-[a-z]+\b/, 'st-' + ev.state);
      var text = ev.state + (ev.root_cause ? ' via ' + ev.root_cause : '');
      var st = el.querySelector('.tile-state');
      if (st) { st.textContent = text; } else if (el.classList.contains('badge')) { el.textContent = ev.state; }
    });
    schedule();
  }

  function status(text, cls) {
    if (live) { live.textContent = text; live.className = 'live ' + cls; }
  }

  var opened = false;
  var es = new EventSource('/events/stream');
  es.addEventListener('open', function () {
    status('● live', 'on');
    // After a reconnect, changes may have been missed: re-draw.
    if (opened) { schedule(); }
    opened = true;
  });
  es.addEventListener('error', function () {
    status(es.readyState === EventSource.CLOSED ? '○ offline — reload' : '○ reconnecting', 'off');
  });
  // Alerts committed by the incident service: page scripts (soc.js)
  // listen for the DOM event and re-draw what they show.
  es.addEventListener('alert', function (m) {
    var ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    document.dispatchEvent(new CustomEvent('nocsoc:alert', { detail: ev }));
  });
  es.addEventListener('check', function (m) {
    var ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    apply(ev);
  });
})();
