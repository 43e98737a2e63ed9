// nocsoc SOC queue and incident pages: keyboard shortcuts, task
// checkboxes that save on click, and live queue rows. Every action is a
// plain form POST; this script only makes it quicker.
(function () {
  'use strict';

  // Task checkboxes submit their form when clicked.
  document.querySelectorAll('input.autosubmit').forEach(function (cb) {
    cb.addEventListener('change', function () { cb.form.requestSubmit(); });
  });

  var tbody = document.getElementById('rows');
  if (!tbody) { return; }
  var form = document.getElementById('queue');
  var cur = -1;

  function rows() { return Array.prototype.slice.call(tbody.querySelectorAll('tr.alert-row')); }
  function select(i) {
    var rs = rows();
    if (rs.length === 0) { return; }
    i = Math.max(0, Math.min(rs.length - 1, i));
    rs.forEach(function (r) { r.classList.remove('sel'); r.removeAttribute('aria-selected'); });
    rs[i].classList.add('sel');
    rs[i].setAttribute('aria-selected', 'true');
    rs[i].scrollIntoView({ block: 'nearest' });
    cur = i;
  }
  function selected() { var rs = rows(); return cur >= 0 && cur < rs.length ? rs[cur] : null; }

  // act submits the queue form for the checked rows, or the current row.
  function act(action) {
    if (!form) { return; }
    if (!form.querySelector('input[name=ids]:checked')) {
      var r = selected();
      var box = r && r.querySelector('input[name=ids]');
      if (!box) { return; }
      box.checked = true;
    }
    var h = document.createElement('input');
    h.type = 'hidden'; h.name = 'action'; h.value = action;
    form.appendChild(h);
    form.requestSubmit();
  }

  document.addEventListener('keydown', function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var t = e.target;
    if (t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable)) {
      if (e.key === 'Escape') { t.blur(); }
      return;
    }
    switch (e.key) {
      case 'j': select(cur + 1); break;
      case 'k': select(cur - 1); break;
      case 'x': {
        var r = selected(), box = r && r.querySelector('input[name=ids]');
        if (box) { box.checked = !box.checked; }
        break;
      }
      case 'a': act('ack'); break;
      case 'e': act('escalate'); break;
      case '/': { var q = document.getElementById('q'); if (q) { q.focus(); q.select(); } break; }
      default: return;
    }
    e.preventDefault();
  });

  // Live rows: on the first page, new alerts re-draw the table body,
  // keeping the current row and the checked boxes.
  if (tbody.getAttribute('data-first') !== '1') { return; }
  var timer = null;
  function refresh() {
    timer = null;
    var keep = selected() ? selected().getAttribute('data-id') : null;
    var checked = {};
    tbody.querySelectorAll('input[name=ids]:checked').forEach(function (b) { checked[b.value] = true; });
    fetch('/soc/rows' + location.search, { credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) { throw new Error('HTTP ' + r.status); } return r.text(); })
      .then(function (html) {
        tbody.innerHTML = html;
        var rs = rows();
        cur = -1;
        rs.forEach(function (r, i) {
          var box = r.querySelector('input[name=ids]');
          if (box && checked[box.value]) { box.checked = true; }
          if (r.getAttribute('data-id') === keep) { select(i); }
        });
        if (rs.length > 0) { tbody.setAttribute('data-top', rs[0].getAttribute('data-id')); }
      })
      .catch(function () { /* the next event retries */ });
  }
  document.addEventListener('nocsoc:alert', function (e) {
    var top = parseInt(tbody.getAttribute('data-top') || '0', 10);
    if (e.detail && e.detail.newest > top && !timer) { timer = setTimeout(refresh, 500); }
  });
})();
