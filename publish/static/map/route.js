/*
 * Walking routes on the hazard map: asks the release's OGC API process ``walk-route`` (built at
 * publish from the road network, publish/build/routing.py) for the nearest shelters designated
 * for a hazard, draws the routes (the nearest one bold) and writes the directions as text, in
 * the page's language: the steps come as (turn, street, metres) and are phrased here from the
 * page's catalogue, so 日本語, English and やさしい にほんご read the same route.
 *
 * What the walker must know is said, not hidden: a point far from every mapped road, a network
 * in separate parts, a nearer shelter that cannot be reached on the mapped roads, a gap crossed
 * in a straight line (the process's notes and errors, shown as they come). Errors are alerts
 * (role=alert); when the API cannot be reached (no network, a static copy of the site, a proxy's
 * error page, no answer in TIMEOUT_MS) the walker reads that in words, and the page never hangs.
 */
(function (global) {
  'use strict';

  var COLOURS = ['#0b3d91', '#5b6f9a', '#8a97b5'];
  var TIMEOUT_MS = 20000;  // a phone on a crowded network: long, but never endless

  /**
   * POST {api}/processes/walk-route/execution -> {fc} | {error: "<ja> / <en>"} (the process's
   * own message) | {status: <HTTP status>} (something else answered: a static server, a proxy
   * with the API down) | {offline: true} (no answer at all, or none in time). Never rejects.
   */
  function request(api, lon, lat, kind, n, timeoutMs) {
    var body = {inputs: {lon: lon, lat: lat, kind: kind}};
    if (n) { body.inputs.n = n; }
    var ctl = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = ctl ? setTimeout(function () { ctl.abort(); }, timeoutMs || TIMEOUT_MS) : null;
    var done = function (x) { if (timer) { clearTimeout(timer); } return x; };
    return fetch(api + '/processes/walk-route/execution', {
      method: 'POST', headers: {'Content-Type': 'application/json', Accept: 'application/json'},
      body: JSON.stringify(body), credentials: 'same-origin', signal: ctl ? ctl.signal : undefined
    }).then(function (r) {
      return r.text().then(function (raw) {
        var j = null;
        try { j = JSON.parse(raw); } catch (e) { j = null; }
        if (r.ok && j && j.type === 'FeatureCollection' && j.features) { return {fc: j}; }
        if (j && typeof j.description === 'string' && j.description) {
          return {error: j.description};
        }
        return {status: r.status};
      });
    }).then(done, function () { return done({offline: true}); });
  }

  /** One side of a bilingual "<ja> / <en>" server message (やさしい にほんご reads the ja). */
  function side(msg, lang) {
    var i = msg.indexOf(' / ');
    if (i < 0) { return msg; }
    return lang === 'en' ? msg.slice(i + 3) : msg.slice(0, i);
  }

  /** A step as text, from the page's catalogue (route_step, route_turn_*, ...). */
  function stepText(step, t) {
    if (step.turn === 'link') { return t('route_step_link', {m: step.m}); }
    if (step.turn === 'arrive') { return t('route_step_arrive', {name: step.name, m: step.m}); }
    return t('route_step', {turn: t('route_turn_' + step.turn),
      name: step.name || t('route_unnamed_road'), m: step.m});
  }

  function round10(m) { return Math.max(10, Math.round(m / 10) * 10); }

  /**
   * The route layer and its text: ``ctx`` = {map, t(key, vars), lang(), kindTitle(kind) ->
   * {ja, en, ...}, api, speed, timeoutMs?, onClear?}; ``box`` = the element the directions go
   * into.
   */
  function Panel(ctx, box) {
    this.ctx = ctx;
    this.box = box;
    this.layer = null;
    this.last = null;
  }

  Panel.prototype.clear = function () {
    if (this.layer) { this.ctx.map.removeLayer(this.layer); }
    this.layer = null;
    this.last = null;
    this.ticket = (this.ticket || 0) + 1;
    this.box.removeAttribute('aria-busy');
    this.box.textContent = '';
    this.box.hidden = true;
  };

  /** Ask for routes from (lat, lon) for ``kind``; draw and describe them. An answer that
   * arrives after another request (or a clear) is dropped. */
  Panel.prototype.route = function (lat, lon, kind) {
    var self = this, t = this.ctx.t;
    this.clear();
    var ticket = this.ticket = (this.ticket || 0) + 1;
    this.box.hidden = false;
    this.box.setAttribute('aria-busy', 'true');
    var p = document.createElement('p');
    p.className = 'rt-loading';
    p.setAttribute('role', 'status');
    p.textContent = t('route_loading');
    this.box.appendChild(p);
    return request(this.ctx.api, lon, lat, kind, null, this.ctx.timeoutMs).then(function (res) {
      if (ticket !== self.ticket) { return null; }
      self.box.removeAttribute('aria-busy');
      self.last = {kind: kind, res: res};
      self.render();
      if (res.fc) { self.draw(res.fc); }
      return res;
    });
  };

  /** The words for an answer that is not a route, in the page's language. */
  Panel.prototype.errorText = function (res) {
    var t = this.ctx.t;
    if (res.error) { return side(res.error, this.ctx.lang()); }
    if (res.offline) { return t('card_route_offline'); }
    return t('card_route_status', {status: res.status});
  };

  Panel.prototype.draw = function (fc) {
    var map = this.ctx.map;
    var lines = fc.features.map(function (f, i) {
      var ll = f.geometry.coordinates.map(function (c) { return [c[1], c[0]]; });
      return L.polyline(ll, {color: COLOURS[Math.min(i, COLOURS.length - 1)],
        weight: i === 0 ? 6 : 4, opacity: i === 0 ? 0.9 : 0.7,
        dashArray: i === 0 ? null : '8 6', interactive: false,
        className: 'rt-line rt-line-' + i});
    });
    this.layer = L.layerGroup(lines.slice().reverse()).addTo(map);
    if (lines.length) { map.fitBounds(lines[0].getBounds(), {padding: [30, 30], maxZoom: 18}); }
  };

  /** The directions in the page's current language (called again on a language switch). */
  Panel.prototype.render = function () {
    if (!this.last) { return; }
    var self = this, t = this.ctx.t, lang = this.ctx.lang(), res = this.last.res, box = this.box;
    box.textContent = '';
    var kt = this.ctx.kindTitle(this.last.kind);
    var h = document.createElement('h3');
    h.className = 'rt-title';
    h.tabIndex = -1;
    h.textContent = t('route_button', {kind: kt[lang] || kt.ja, kind_en: kt.en});
    box.appendChild(h);
    var clear = document.createElement('button');
    clear.type = 'button';
    clear.className = 'gm-btn rt-clear';
    clear.textContent = t('route_clear');
    clear.addEventListener('click', function () {
      self.clear();
      if (self.ctx.onClear) { self.ctx.onClear(); }
    });
    if (!res.fc) {
      var p = document.createElement('p');
      p.className = 'rt-error';
      p.setAttribute('role', 'alert');
      p.textContent = this.errorText(res);
      box.appendChild(p);
      box.appendChild(clear);
      return;
    }
    var fc = res.fc;
    (fc.notes || []).forEach(function (n) {
      var q = document.createElement('p');
      q.className = 'rt-note';
      q.textContent = '⚠ ' + (n[lang] || n.ja);
      box.appendChild(q);
    });
    var list = document.createElement('ol');
    list.className = 'rt-routes';
    fc.features.forEach(function (f, i) {
      var pr = f.properties;
      var li = document.createElement('li');
      li.className = 'rt-route rt-route-' + i;
      var s = document.createElement('p');
      s.className = 'rt-summary';
      s.textContent = t('route_summary', {name: pr.name, d: round10(pr.distance_m),
        min: pr.walk_min});
      li.appendChild(s);
      var d = document.createElement('details');
      if (i === 0) { d.open = true; }
      var sum = document.createElement('summary');
      sum.textContent = t('route_directions');
      d.appendChild(sum);
      var steps = document.createElement('ol');
      steps.className = 'rt-steps';
      pr.steps.forEach(function (st) {
        var x = document.createElement('li');
        x.textContent = stepText(st, t);
        steps.appendChild(x);
      });
      d.appendChild(steps);
      li.appendChild(d);
      list.appendChild(li);
    });
    box.appendChild(list);
    var c = document.createElement('p');
    c.className = 'gm-small rt-caution';
    c.textContent = t('route_caution') + ' ' + t('route_speed_note', {speed: this.ctx.speed});
    box.appendChild(c);
    box.appendChild(clear);
  };

  global.GisRoute = {request: request, stepText: stepText, side: side, Panel: Panel,
    TIMEOUT_MS: TIMEOUT_MS};
}(window));
