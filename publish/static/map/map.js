/*
 * Map pages (built by publish/pages/page.py): one script for every page a city declares.
 *
 * The page embeds its configuration (<script id="gm-config">): layers with their style (colours
 * from the code lists), popups, labels, legend, zoom range and where the features come from:
 *   - "data": the page's data file (<page>.json next to it), loaded once, drawn at once;
 *   - "api":  the OGC API, by view: tiles one zoom level coarser than the view are the cache
 *     keys, missing tiles are merged into few bbox requests, `next` links are followed, and
 *     requests for an area the view has left are aborted.
 * Behaviours (parcel.js: 地番 search and pipe sheets; hazard.js: the risk card and shelters)
 * register in GisMap.behaviours and are switched on by the roles the configuration carries.
 * Every text comes from the configuration (ja/en; one language shown at a time).
 */
(function () {
  'use strict';

  var LS_LANG = 'gis-map-lang';
  var TPL = /\{(\w+)(\.label)?(?::\.(\d+))?(\|lower)?\}/g;
  var GSI_ATTR = '<a href="https://maps.gsi.go.jp/development/ichiran.html" target="_blank" ' +
    'rel="noopener">地理院タイル</a>';
  var BASEMAPS = {
    pale: 'https://cyberjapandata.gsi.go.jp/xyz/pale/{z}/{x}/{y}.png',
    std: 'https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png'
  };
  var G = window.GisMap = {ready: false, behaviours: []};

  // ---------------------------------------------------------------------------------------
  // small helpers
  // ---------------------------------------------------------------------------------------
  function esc(s) {
    return String(s === null || s === undefined ? '' : s).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  }

  function fmt(s, vars) {
    return String(s).replace(/\{(\w+)\}/g, function (m, k) {
      return vars && vars[k] !== undefined && vars[k] !== null ? vars[k] : m;
    });
  }

  /** Fill a label or card template: {field}, {field.label}, {field:.1}, {field|lower}. */
  function fillTemplate(tpl, get) {
    return String(tpl).replace(TPL, function (m, key, label, n, lower) {
      var v = get(key, !!label);
      var s = v === null || v === undefined || v === '' ? '?' : String(v);
      if (n) { s = Array.from(s).slice(0, Number(n)).join(''); }
      return lower ? s.toLowerCase() : s;
    });
  }

  function code(v) { return v === null || v === undefined ? null : String(v); }

  // Web Mercator tiles (the cache key space of view-loaded layers)
  function tileX(lon, z) { return Math.floor((lon + 180) / 360 * Math.pow(2, z)); }
  function tileY(lat, z) {
    var r = lat * Math.PI / 180;
    return Math.floor((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2 * Math.pow(2, z));
  }
  function tileLon(x, z) { return x / Math.pow(2, z) * 360 - 180; }
  function tileLat(y, z) {
    var n = Math.PI - 2 * Math.PI * y / Math.pow(2, z);
    return 180 / Math.PI * Math.atan(0.5 * (Math.exp(n) - Math.exp(-n)));
  }

  /** Group missing tiles into few rectangles: runs per row, then identical runs stacked. */
  function mergeRects(tiles) {
    var rows = {};
    tiles.forEach(function (t) { (rows[t.y] = rows[t.y] || []).push(t.x); });
    var runs = [];
    Object.keys(rows).map(Number).sort(function (a, b) { return a - b; }).forEach(function (y) {
      var xs = rows[y].sort(function (a, b) { return a - b; });
      var start = xs[0], prev = xs[0];
      for (var i = 1; i <= xs.length; i++) {
        if (i < xs.length && xs[i] === prev + 1) { prev = xs[i]; continue; }
        runs.push({x0: start, x1: prev, y0: y, y1: y});
        if (i < xs.length) { start = prev = xs[i]; }
      }
    });
    var rects = [];
    runs.forEach(function (r) {
      var up = rects.find(function (q) { return q.x0 === r.x0 && q.x1 === r.x1 && q.y1 === r.y0 - 1; });
      if (up) { up.y1 = r.y1; } else { rects.push(r); }
    });
    return rects;
  }

  function geomBounds(g) {
    var b = [Infinity, Infinity, -Infinity, -Infinity];
    (function walk(c) {
      if (typeof c[0] === 'number') {
        if (c[0] < b[0]) { b[0] = c[0]; } if (c[0] > b[2]) { b[2] = c[0]; }
        if (c[1] < b[1]) { b[1] = c[1]; } if (c[1] > b[3]) { b[3] = c[1]; }
      } else { for (var i = 0; i < c.length; i++) { walk(c[i]); } }
    })(g.coordinates);
    return b;
  }

  function initialLang(cfg) {
    var q = new URLSearchParams(window.location.search).get('lang');
    if (q === 'ja' || q === 'en') { return q; }
    try {
      var s = window.localStorage.getItem(LS_LANG);
      if (s === 'ja' || s === 'en') { return s; }
    } catch (e) { /* storage blocked: the default */ }
    return cfg.lang || 'ja';
  }

  // ---------------------------------------------------------------------------------------
  // The application
  // ---------------------------------------------------------------------------------------
  function App(cfg) {
    this.cfg = cfg;
    this.lang = initialLang(cfg);
    this.layers = {};
    this.order = [];
    this.queue = [];
    this.active = 0;
    this.maxActive = 3;
    this.stats = {requests: 0, aborted: 0, features: 0};
    this.consented = !cfg.terms;
    this.behaviours = [];
    this.colorField = {};
    this.noticeState = null;
  }

  // ---- texts (ja/en)
  App.prototype.t = function (key, vars) {
    var e = this.cfg.text[key];
    var s = e ? (e[this.lang] !== undefined ? e[this.lang] : e.ja) : key;
    return vars ? fmt(s, vars) : s;
  };
  App.prototype.lab = function (entry) {
    if (!entry) { return ''; }
    return entry[this.lang] || entry.ja || '';
  };
  /** Both languages (for HTML Leaflet keeps, e.g. attribution): CSS shows one. */
  App.prototype.bi = function (entry) {
    return '<span class="gm-ja" lang="ja">' + esc(entry.ja) + '</span>' +
      '<span class="gm-en" lang="en">' + esc(entry.en) + '</span>';
  };
  App.prototype.both = function (key, vars) {
    var e = this.cfg.text[key] || {ja: key, en: key};
    return this.bi({ja: fmt(e.ja, vars), en: fmt(e.en, vars)});
  };

  /** Call ``name`` on every behaviour; the first defined result is returned. */
  App.prototype.emit = function (name) {
    var args = Array.prototype.slice.call(arguments, 1), out;
    this.behaviours.forEach(function (b) {
      if (typeof b[name] === 'function') {
        var r = b[name].apply(b, args);
        if (r !== undefined && out === undefined) { out = r; }
      }
    });
    return out;
  };

  App.prototype.start = function () {
    var self = this, cfg = this.cfg;
    document.documentElement.lang = this.lang;
    var map = this.map = L.map('gm-map', {zoomControl: true, maxZoom: cfg.view.maxZoom || 20});
    this.canvas = L.canvas({padding: 0.3, tolerance: 6});
    this.svg = L.svg({padding: 0.3});
    this.buildBasemaps();
    this.control = L.control.layers(this.baseLayers, {}, {collapsed: true, position: 'topright'})
      .addTo(map);
    this.hash = this.readHash();
    this.setInitialView();
    cfg.layers.slice().sort(function (a, b) { return a.z - b.z; }).forEach(function (conf, i) {
      var lay = new MapLayer(self, conf, i);
      self.layers[conf.id] = lay;
      self.order.push(lay);
      if (conf.show) { lay.group.addTo(map); }
      self.control.addOverlay(lay.group, '<span class="gm-layer-name" data-layer="' + esc(conf.id) +
        '">' + self.bi(conf.title) + '</span>');
    });
    this.labelsGroup = L.layerGroup().addTo(map);
    this.located = L.layerGroup().addTo(map);
    this.buildStatus();
    G.behaviours.forEach(function (B) {
      if (B.applies(cfg)) { self.behaviours.push(B.create(self)); }
    });
    this.buildChrome();
    map.on('moveend', function () {
      self.refresh();
      self.writeHash();
    });
    map.on('zoomend', function () { self.order.forEach(function (l) { l.updateRange(); }); });
    map.on('overlayadd overlayremove', function (e) {
      var lay = self.order.find(function (l) { return l.group === e.layer; });
      if (lay && e.type === 'overlayadd') { self.restackFrom(lay.index); }  // back in its place
      self.refresh();
      self.order.forEach(function (l) { l.updateArrows(); });
    });
    map.on('click', function (e) { self.emit('mapClick', e); });
    this.order.forEach(function (l) { l.updateRange(); });
    this.setLang(this.lang, true);
    this.showTerms();
  };

  App.prototype.buildBasemaps = function () {
    var self = this, cfg = this.cfg, maxZoom = cfg.view.maxZoom || 20;
    this.baseLayers = {};
    this.tileLayers = [];
    if (cfg.basemap === 'none') { return; }
    var order = cfg.basemap === 'std' ? ['std', 'pale'] : ['pale', 'std'];
    order.forEach(function (name, i) {
      var tl = L.tileLayer(BASEMAPS[name], {attribution: GSI_ATTR, maxZoom: maxZoom,
        maxNativeZoom: 18});
      tl.on('tileerror', function () { self.tilesFailed(); });
      self.baseLayers['<span data-basemap="' + name + '">' + self.both('map_basemap_' + name) +
        '</span>'] = tl;
      self.tileLayers.push(tl);
      if (i === 0) { tl.addTo(self.map); }
    });
  };

  App.prototype.setInitialView = function () {
    var v = this.cfg.view, map = this.map;
    if (this.hash.view) {
      map.setView([this.hash.view.lat, this.hash.view.lon], this.hash.view.z, {animate: false});
    } else if (v.center && v.zoom !== null && v.zoom !== undefined) {
      map.setView(v.center, v.zoom, {animate: false});
    } else if (v.bounds) {
      map.fitBounds([[v.bounds[1], v.bounds[0]], [v.bounds[3], v.bounds[2]]], {animate: false});
    } else {
      map.setView([36.0, 138.0], 5, {animate: false});
    }
  };

  // ---- terms of use (versioned, remembered in localStorage) and the data file
  App.prototype.storedTerms = function () {
    try { return window.localStorage.getItem(this.cfg.terms.storageKey); } catch (e) { return null; }
  };
  App.prototype.showTerms = function () {
    var self = this, cfg = this.cfg, tm = cfg.terms;
    if (!tm || this.storedTerms() === tm.version) { this.onConsent(); return; }
    var box = document.createElement('div');
    box.className = 'gm-terms';
    box.id = 'gm-terms';
    box.setAttribute('role', 'dialog');
    box.setAttribute('aria-modal', 'true');
    var paras = tm.paragraphs.map(function (p) { return '<li>' + self.bi(p) + '</li>'; }).join('');
    var src = cfg.sources.map(function (s) { return '<li>' + self.bi(s) + '</li>'; }).join('');
    var c = cfg.contact;
    var contact = c && c.name ? '<p class="gm-contact">' + this.both('map_contact') + ': ' +
      esc(c.name) + (c.phone ? ' (' + esc(c.phone) + ')' : '') + '</p>' : '';
    box.innerHTML =
      '<div class="gm-terms-card">' +
      '<button type="button" class="gm-btn gm-terms-lang" id="gm-terms-lang">' +
      '<span class="gm-ja" lang="en">English</span><span class="gm-en" lang="ja">日本語</span></button>' +
      '<h1>' + this.bi(cfg.page.title) + '</h1>' +
      '<h2>' + this.both('map_terms_title') + ' <small>(' +
      this.both('map_terms_version', {v: tm.version}) + ')</small></h2>' +
      '<ol>' + paras + '</ol>' +
      '<p><b>' + this.both('map_terms_source') + ':</b></p><ul class="gm-src">' + src +
      '<li>' + this.both('map_basemap_attr') + '</li></ul>' +
      '<p><b>' + this.both('map_terms_dates') + ':</b> ' + esc(this.datesText()) + '</p>' + contact +
      '<p><a href="' + esc(tm.url) + '" target="_blank" rel="noopener">' +
      this.both('map_terms_full') + '</a></p>' +
      '<div class="gm-terms-buttons">' +
      '<button type="button" class="gm-btn gm-primary" id="gm-agree">' +
      this.both('map_terms_agree') + '</button>' +
      '<button type="button" class="gm-btn" id="gm-decline">' + this.both('map_terms_decline') +
      '</button></div><p class="gm-declined" id="gm-declined" hidden>' +
      this.both('map_terms_declined') + '</p></div>';
    document.body.appendChild(box);
    box.querySelector('#gm-terms-lang').addEventListener('click', function () {
      self.setLang(self.lang === 'ja' ? 'en' : 'ja');
    });
    box.querySelector('#gm-agree').addEventListener('click', function () {
      try { window.localStorage.setItem(tm.storageKey, tm.version); } catch (e) { /* private mode */ }
      box.remove();
      self.onConsent();
    });
    box.querySelector('#gm-decline').addEventListener('click', function () {
      box.querySelector('#gm-declined').hidden = false;
    });
    box.querySelector('#gm-agree').focus();
  };

  App.prototype.onConsent = function () {
    var self = this;
    this.consented = true;
    document.body.classList.add('gm-consented');
    var load = this.cfg.dataUrl ?
      fetch(this.cfg.dataUrl).then(function (r) {
        if (!r.ok) { throw new Error('HTTP ' + r.status); }
        return r.json();
      }) : Promise.resolve({layers: {}});
    return load.then(function (data) {
      self.data = data;
      self.order.forEach(function (lay) {
        if (lay.conf.source === 'data') { lay.setData((data.layers || {})[lay.id] || []); }
      });
    }, function () {
      self.data = {layers: {}};
      self.setNotice('map_load_error', {layer: self.lab(self.cfg.page.title)});
    }).then(function () {
      self.emit('data', self.data);
      self.refresh();
      self.updateLabels();
      self.emit('consent');
      G.ready = true;
      document.body.classList.add('gm-ready');
    });
  };

  App.prototype.datesText = function () {
    var self = this;
    var dated = this.cfg.layers.filter(function (l) { return l.date; });
    var uniq = dated.map(function (l) { return l.date; }).filter(function (d, i, a) {
      return a.indexOf(d) === i;
    });
    if (!uniq.length) { return '—'; }
    if (uniq.length === 1) { return uniq[0]; }
    return dated.map(function (l) { return self.lab(l.title) + ' ' + l.date; })
      .join(this.t('map_list_sep'));
  };

  // ---- header, legend panel, notices
  App.prototype.buildChrome = function () {
    var self = this;
    document.getElementById('gm-lang-btn').addEventListener('click', function () {
      self.setLang(self.lang === 'ja' ? 'en' : 'ja');
    });
    document.getElementById('gm-legend-btn').addEventListener('click', function () {
      self.toggleLegend();
    });
    document.getElementById('gm-legend-close').addEventListener('click', function () {
      self.toggleLegend(false);
    });
    document.getElementById('gm-locate').addEventListener('click', function () { self.locate(); });
    document.addEventListener('keydown', function (e) {
      if (e.key === 'Escape' && !document.getElementById('gm-legend').hidden) {
        self.toggleLegend(false);
      }
    });
    var attr = this.map.attributionControl && this.map.attributionControl.getContainer();
    if (attr) {
      attr.classList.add('gm-clamp');
      attr.setAttribute('tabindex', '0');
      var fold = function () {
        var open = attr.classList.toggle('gm-open');
        attr.setAttribute('aria-expanded', open ? 'true' : 'false');
      };
      attr.addEventListener('click', function (e) { if (e.target.tagName !== 'A') { fold(); } });
      attr.addEventListener('keydown', function (e) {
        if ((e.key === 'Enter' || e.key === ' ') && e.target === attr) { e.preventDefault(); fold(); }
      });
      L.DomEvent.disableClickPropagation(attr);
    }
    if (window.ResizeObserver) {
      var map = this.map;
      new ResizeObserver(function () { map.invalidateSize(); }).observe(map.getContainer());
    }
  };

  App.prototype.toggleLegend = function (open) {
    var panel = document.getElementById('gm-legend');
    var btn = document.getElementById('gm-legend-btn');
    var show = open === undefined ? panel.hidden : open;
    panel.hidden = !show;
    btn.setAttribute('aria-expanded', show ? 'true' : 'false');
    if (show) { document.getElementById('gm-legend-close').focus(); } else { btn.focus(); }
  };

  App.prototype.setNotice = function (key, vars) {
    this.noticeState = key ? {key: key, vars: vars} : null;
    var n = document.getElementById('gm-notice');
    if (!key) { n.hidden = true; n.textContent = ''; return; }
    n.textContent = this.t(key, vars);
    n.hidden = false;
  };

  App.prototype.tilesFailed = function () {
    var n = document.getElementById('gm-tiles-notice');
    if (!n) {
      n = document.createElement('p');
      n.id = 'gm-tiles-notice';
      n.className = 'gm-notice gm-tiles-notice';
      document.getElementById('gm-notices').appendChild(n);
    }
    n.textContent = this.t('map_tiles_failed');
  };

  App.prototype.setLang = function (l, first) {
    this.lang = l === 'en' ? 'en' : 'ja';
    document.documentElement.lang = this.lang;
    if (!first) {
      try { window.localStorage.setItem(LS_LANG, this.lang); } catch (e) { /* not remembered */ }
    }
    document.title = this.lab(this.cfg.page.title);
    var btn = document.getElementById('gm-lang-btn');
    if (btn) { btn.setAttribute('aria-label', this.t('map_lang_switch_label')); }
    var attr = this.map.attributionControl && this.map.attributionControl.getContainer();
    if (attr) { attr.setAttribute('title', this.t('map_attr_toggle')); }
    this.map.getContainer().setAttribute('aria-label', this.lab(this.cfg.page.title));
    if (!first) { this.map.closePopup(); }
    this.renderLegend();
    this.updateStatus();
    this.updateLabels();
    if (this.noticeState) { this.setNotice(this.noticeState.key, this.noticeState.vars); }
    if (document.getElementById('gm-tiles-notice')) { this.tilesFailed(); }
    this.emit('lang', this.lang);
  };

  // ---- my location
  App.prototype.locate = function () {
    var self = this, map = this.map;
    if (!('geolocation' in navigator) || window.isSecureContext === false) {
      this.setNotice('map_geo_unsupported');
      return;
    }
    this.setNotice('map_geo_locating');
    navigator.geolocation.getCurrentPosition(function (pos) {
      var c = pos.coords, ll = L.latLng(c.latitude, c.longitude);
      var need = Math.max.apply(null, self.order.map(function (l) { return l.conf.minZoom; })
        .concat([15]));
      map.setView(ll, Math.max(map.getZoom(), Math.min(need, map.getMaxZoom())));
      self.located.clearLayers();
      L.circle(ll, {radius: c.accuracy, color: '#1565c0', weight: 1, fillOpacity: 0.1,
        interactive: false}).addTo(self.located);
      L.circleMarker(ll, {radius: 7, color: '#ffffff', weight: 2, fillColor: '#1565c0',
        fillOpacity: 1, interactive: false}).addTo(self.located);
      self.setNotice('map_geo_found', {m: Math.round(c.accuracy)});
      self.emit('located', c.latitude, c.longitude, c.accuracy);
    }, function (err) {
      self.setNotice(err && err.code === 1 ? 'map_geo_denied' : err && err.code === 3 ?
        'map_geo_timeout' : 'map_geo_unavailable');
    }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
  };

  // ---- URL hash: #map=z/lat/lon (+ what behaviours add, e.g. &oaza=..&chiban=..)
  App.prototype.readHash = function () {
    var out = {params: {}};
    window.location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i < 0) { return; }
      var k = kv.slice(0, i), v;
      try { v = decodeURIComponent(kv.slice(i + 1)); } catch (e) { return; }
      if (k === 'map') {
        var p = v.split('/').map(Number);
        if (p.length === 3 && p.every(isFinite)) { out.view = {z: p[0], lat: p[1], lon: p[2]}; }
      } else { out.params[k] = v; }
    });
    return out;
  };
  App.prototype.writeHash = function () {
    if (!window.history || !window.history.replaceState) { return; }
    var c = this.map.getCenter(), z = this.map.getZoom();
    var h = '#map=' + z + '/' + c.lat.toFixed(5) + '/' + c.lng.toFixed(5);
    this.behaviours.forEach(function (b) {
      var extra = b.hashParts && b.hashParts();
      if (extra) {
        Object.keys(extra).forEach(function (k) { h += '&' + k + '=' + encodeURIComponent(extra[k]); });
      }
    });
    window.history.replaceState(null, '', h);
  };

  // ---- view loading: a small request queue, a few requests at a time, by layer priority
  App.prototype.tileZoomFor = function (z) {
    return Math.max(this.cfg.tileZoom, Math.min(this.cfg.maxTileZoom, Math.round(z) - 1));
  };
  App.prototype.viewTiles = function () {
    var z = this.tileZoomFor(this.map.getZoom()), b = this.map.getBounds();
    var x0 = tileX(b.getWest(), z), x1 = tileX(b.getEast(), z);
    var y0 = tileY(b.getNorth(), z), y1 = tileY(b.getSouth(), z);
    var out = [];
    for (var x = x0; x <= x1; x++) {
      for (var y = y0; y <= y1; y++) { out.push({z: z, x: x, y: y, key: z + '/' + x + '/' + y}); }
    }
    return out;
  };
  App.prototype.refresh = function () {
    if (!this.consented) { return; }
    var tiles = this.viewTiles(), z = this.map.getZoom(), view = this.map.getBounds();
    this.order.forEach(function (lay) { if (lay.conf.source === 'api') { lay.update(tiles, z, view); } });
    this.updateLabels();
    this.updateStatus();
  };
  App.prototype.enqueue = function (task) {
    this.queue.push(task);
    this.queue.sort(function (a, b) { return a.priority - b.priority; });
    this.pump();
  };
  App.prototype.pump = function () {
    var self = this;
    while (this.active < this.maxActive && this.queue.length) {
      var task = this.queue.shift();
      if (task.ctrl.signal.aborted) { continue; }
      this.active++;
      task.run().then(function () {}, function () {}).then(function () {
        self.active--;
        self.pump();
        self.updateStatus();
      });
    }
    this.updateStatus();
  };
  App.prototype.itemsUrl = function (layer, query) {
    return this.cfg.api + '/collections/' + encodeURIComponent(layer) + '/items?' + query;
  };
  /** A `next` link, re-based on our own API path (the server may write another host). */
  App.prototype.rebase = function (href, layer) {
    var u = new URL(href, window.location.href);
    if (!u.searchParams.has('f')) { u.searchParams.set('f', 'json'); }
    return this.itemsUrl(layer, u.search.replace(/^\?/, ''));
  };

  /** Keep the canvas stacking of the page's layers (bottom to top) after new features. */
  App.prototype.restackFrom = function (index) {
    for (var i = index + 1; i < this.order.length; i++) {
      this.order[i].content.eachLayer(function (l) {
        if (l.bringToFront) { l.bringToFront(); }
      });
    }
  };
  /** New features of ``lay`` go between the layers below and above it (one shared canvas). */
  App.prototype.place = function (lay, added) {
    var has = function (l) { return l.features.size > 0; };
    if (!this.order.slice(lay.index + 1).some(has)) { return; }  // already on top
    if (!this.order.slice(0, lay.index).some(has)) {  // the lowest layer: only the new ones move
      added.forEach(function (l) { if (l.bringToBack) { l.bringToBack(); } });
      return;
    }
    this.restackFrom(lay.index);
  };

  // ---- status line (zoom hints, loading, too many, errors)
  App.prototype.buildStatus = function () {
    var el = document.createElement('div');
    el.className = 'gm-status';
    el.id = 'gm-status';
    el.setAttribute('aria-live', 'polite');
    this.map.getContainer().appendChild(el);
    this.statusEl = el;
  };
  App.prototype.updateStatus = function () {
    var self = this, z = this.map.getZoom(), parts = [], below = {};
    if (!this.statusEl) { return; }
    this.order.forEach(function (l) {
      if (self.map.hasLayer(l.group) && z < l.conf.minZoom) {
        (below[l.conf.minZoom] = below[l.conf.minZoom] || []).push(self.lab(l.conf.title));
      }
    });
    Object.keys(below).map(Number).sort(function (a, b) { return b - a; }).forEach(function (mz) {
      var names = below[mz];
      var list = names.slice(0, 3).join('・') + (names.length > 3 ? '…' : '');
      parts.push(esc(self.t('map_zoom_hint', {layers: list, z: mz})));
    });
    var loading = this.order.some(function (l) { return l.inflight > 0; }) || this.queue.length > 0;
    this.order.forEach(function (l) {
      if (l.tooMany && l.visible()) {
        parts.push(esc(self.t('map_too_many', {layer: self.lab(l.conf.title)})));
      }
      if (l.error) {
        parts.push('<span class="gm-error">' +
          esc(self.t('map_load_error', {layer: self.lab(l.conf.title)})) + '</span>');
      }
    });
    if (loading) { parts.push(esc(this.t('map_loading'))); }
    this.statusEl.innerHTML = parts.map(function (p) { return '<div>' + p + '</div>'; }).join('');
    this.statusEl.hidden = parts.length === 0;
    this.map.getContainer().dataset.loading = loading ? '1' : '0';
  };

  // ---- popups
  App.prototype.formatValue = function (f, p) {
    var v = p[f.name];
    if (f.kind === 'fy') {
      var raw = f.raw && p[f.raw] ? String(p[f.raw]).normalize('NFKC').trim() : null;
      var q = f.qual ? p[f.qual] : null;
      if (v === null || v === undefined) {
        return raw ? esc(raw) + ' (' + esc(this.t('map_unknown')) + ')' : '—';
      }
      var year = String(v);
      if (q === 'approx') { year = 'c. ' + year; }
      else if (q === 'before') { year = '–' + year; }
      else if (q === 'after') { year = year + '–'; }
      return raw ? esc(raw) + ' (' + esc(year) + ')' : esc(year);
    }
    if (v === null || v === undefined || v === '') { return '—'; }
    if (f.label) {
      var label = p[f.name + '_' + this.lang] || p[f.name + '_ja'];
      return label ? '<span class="gm-v">' + esc(label) + '</span> <span class="gm-code">(' +
        esc(v) + ')</span>' : esc(v);
    }
    if (f.type === 'bool' || typeof v === 'boolean') {
      return esc(this.t(v === true || v === 1 || v === '1' ? 'map_yes' : 'map_no'));
    }
    var s = typeof v === 'number' && !Number.isInteger(v) ? String(Number(v.toFixed(2))) : String(v);
    return esc(s) + (f.unit ? ' ' + esc(f.unit) : '');
  };
  App.prototype.popupHtml = function (lay, feature) {
    var self = this, c = lay.conf, p = feature.properties || {};
    var rows = c.fields.map(function (f) {
      return '<tr data-field="' + esc(f.name) + '"><th>' + esc(self.lab(f.title)) + '</th><td>' +
        self.formatValue(f, p) + '</td></tr>';
    }).join('');
    var h = '<div class="gm-popup" data-layer="' + esc(c.id) + '" data-id="' + esc(feature.id) +
      '" lang="' + this.lang + '"><h3>' + esc(this.lab(c.title)) + '</h3>' +
      (rows ? '<table>' + rows + '</table>' : '');
    this.behaviours.forEach(function (b) {
      if (b.popupExtra) { h += b.popupExtra(lay, feature) || ''; }
    });
    return h + '</div>';
  };
  App.prototype.openPopup = function (lay, feature, latlng) {
    if (!this.popup) {
      this.popup = L.popup({maxWidth: 380, minWidth: 220, autoPanPadding: [20, 20]});
    }
    this.popup.setLatLng(latlng).setContent(this.popupHtml(lay, feature)).openOn(this.map);
    var el = this.popup.getElement();
    if (el) { this.emit('popupOpen', el, lay, feature); }
  };

  // ---- labels (地番, pipe sizes ...) at close zoom
  App.prototype.updateLabels = function () {
    var self = this, map = this.map;
    if (!this.labelsGroup) { return; }
    this.labelsGroup.clearLayers();
    var z = map.getZoom(), b = map.getBounds(), n = 0;
    this.order.forEach(function (lay) {
      var lc = lay.conf.labels;
      if (!lc || z < lc.minZoom || !lay.visible()) { return; }
      var tpl = lc.template ? self.lab(lc.template) :
        lc.fields.map(function (f) { return '{' + f + '}'; }).join(' ');
      lay.features.forEach(function (rec) {
        if (n > 1500) { return; }
        var l = rec.layer, p = (l.feature && l.feature.properties) || {};
        if (!lc.fields.some(function (f) { return p[f] !== null && p[f] !== undefined; })) { return; }
        if (!map.hasLayer(l)) { return; }
        if (!rec.center) { rec.center = l.getLatLng ? l.getLatLng() : l.getCenter(); }
        if (!b.contains(rec.center)) { return; }
        n++;
        var txt = fillTemplate(tpl, function (k, label) {
          return label ? (p[k + '_' + self.lang] || p[k + '_ja'] || p[k]) : p[k];
        });
        L.marker(rec.center, {interactive: false, keyboard: false, icon: L.divIcon({
          className: 'gm-label gm-label-' + lay.conf.geometry, html: '<span>' + esc(txt) + '</span>',
          iconSize: null})}).addTo(self.labelsGroup);
      });
    });
  };

  // ---- legend and sources
  App.prototype.swatch = function (lay, color, extra) {
    var st = lay.conf.style, g = lay.conf.geometry, style;
    if (g === 'line') {
      style = 'background-color:' + color + ';height:' + Math.max(2, Math.min(8, st.weight + 1)) + 'px';
    } else if (g === 'point') {
      style = 'background-color:' + (st.fill || color) + ';border-color:' +
        (st.outline || (st.fill ? color : '#ffffff'));
    } else if (extra === 'gm-emph') {  // an emphasised rank: solid, in its own colour
      style = 'background-color:' + color + ';border-color:' + color;
    } else {
      style = 'background-color:' + color + ';border-color:' + (st.outline || color) +
        (st.dash ? ';border-style:dashed' : '');
    }
    return '<span class="gm-swatch gm-swatch-' + g + (extra ? ' ' + extra : '') + '" data-color="' +
      esc(color) + '" style="' + esc(style) + '" aria-hidden="true"></span>';
  };
  App.prototype.legendRows = function (lay) {
    var self = this, c = lay.conf, rows = [];
    if (c.hazard) {
      var h = c.hazard;
      if (h.groupOrder.length) {
        h.groupOrder.forEach(function (g) {
          h.rankOrder.forEach(function (r) {
            var col = lay.hazardColor({r: r, g: g});
            rows.push('<li data-group="' + esc(g) + '" data-rank="' + esc(r) + '">' +
              self.swatch(lay, col.c, col.emph ? 'gm-emph' : '') + '<span>' +
              esc(self.lab(h.groups[g])) + ' — ' + esc(self.lab(h.ranks[r])) + '</span></li>');
          });
        });
      } else {
        h.rankOrder.forEach(function (r) {
          var col = lay.hazardColor({r: r});
          rows.push('<li data-code="' + esc(r) + '">' + self.swatch(lay, col.c, col.emph ? 'gm-emph' : '') +
            '<span class="gm-rank">' + esc(r) + '</span> <span>' + esc(self.lab(h.ranks[r])) + '</span></li>');
        });
      }
      return rows;
    }
    var field = lay.colorField();
    if (field) {
      var cb = lay.colorByOf(field), present = (this.cfg.present[c.id] || {})[field];
      var first = c.colorBy[0] && c.colorBy[0].field === field;
      Object.keys(cb.codes).filter(function (k) { return !present || present.indexOf(k) >= 0; })
        .forEach(function (k) {
          rows.push('<li data-code="' + esc(k) + '">' + self.swatch(lay, cb.codes[k].color) +
            '<span>' + esc(self.lab(cb.codes[k])) + (first ? '' : ' <code>' + esc(k) + '</code>') +
            '</span></li>');
        });
    } else if (c.role !== 'shelter') {
      rows.push('<li>' + this.swatch(lay, c.style.color) + '<span>' + esc(this.lab(c.title)) +
        '</span></li>');
    }
    return rows;
  };
  App.prototype.renderLegend = function () {
    var self = this, body = document.getElementById('gm-legend-body');
    if (!body) { return; }
    var html = '';
    this.order.forEach(function (lay) {
      var c = lay.conf;
      if (!c.legend) { return; }
      var small = [];
      if (c.minZoom > 0) { small.push(self.t('map_zoom_range', {z: c.minZoom})); }
      small.push(c.date ? self.t('map_as_of', {date: c.date}) : self.t('map_date_unknown'));
      html += '<section class="gm-legend-sec" data-legend="' + esc(c.id) + '"><h3>' +
        esc(self.lab(c.title)) + '</h3><p class="gm-small">' + esc(small.join(' · ')) + '</p>';
      if (c.colorBy.length > 1) {
        html += '<label class="gm-color-by">' + esc(self.t('map_color_by')) +
          ' <select data-layer="' + esc(c.id) + '">' + c.colorBy.map(function (cb) {
            return '<option value="' + esc(cb.field) + '"' +
              (cb.field === lay.colorField() ? ' selected' : '') + '>' + esc(self.lab(cb.title)) +
              '</option>';
          }).join('') + '</select></label>';
      }
      var rows = self.legendRows(lay);
      if (c.widthBy) {
        var wb = c.widthBy, unit = wb.unit ? ' ' + wb.unit : '';
        rows.push('<li class="gm-legend-head">' + esc(self.t('map_width_by', {title: self.lab(wb.title)})) + '</li>');
        wb.classes.forEach(function (w, i) {
          var next = wb.classes[i + 1];
          var label = i === 0 && next ? '< ' + next[0] + unit : next ? w[0] + '–' + next[0] + unit :
            '≥ ' + w[0] + unit;
          rows.push('<li><span class="gm-swatch gm-swatch-line" style="background-color:#444444;height:' +
            w[1] + 'px" aria-hidden="true"></span><span>' + esc(label) + '</span></li>');
        });
      }
      if (c.style.arrows) {
        rows.push('<li><span class="gm-arrow" aria-hidden="true">➤</span><span>' +
          esc(self.t('map_direction')) + '</span></li>');
      }
      self.behaviours.forEach(function (b) {
        if (b.legendRows) { rows = rows.concat(b.legendRows(lay) || []); }
      });
      html += '<ul class="gm-swatches">' + rows.join('') + '</ul></section>';
    });
    body.innerHTML = html;
    body.querySelectorAll('.gm-color-by select').forEach(function (sel) {
      sel.addEventListener('change', function () {
        var lay = self.layers[sel.dataset.layer];
        self.colorField[lay.id] = sel.value;
        lay.restyle();
        self.renderLegend();
      });
    });
    this.renderSources();
  };
  App.prototype.renderSources = function () {
    var self = this, el = document.getElementById('gm-sources');
    if (!el) { return; }
    var h = '<h3>' + esc(this.t('map_sources_title')) + '</h3><dl>';
    this.order.forEach(function (lay) {
      var c = lay.conf;
      h += '<dt data-source="' + esc(c.id) + '">' + esc(self.lab(c.title)) + '</dt>' +
        '<dd data-source="' + esc(c.id) + '">' + esc(self.lab(c.attribution)) + '<br>' +
        esc(c.date ? self.t('map_as_of', {date: c.date}) : self.t('map_date_unknown')) +
        (c.license ? ' · ' + esc(self.t('map_licence')) + ': ' + (c.licenseUrl ?
          '<a href="' + esc(c.licenseUrl) + '" target="_blank" rel="noopener">' + esc(c.license) +
          '</a>' : esc(c.license)) : '') + '</dd>';
    });
    h += '<dt>' + esc(this.t('map_basemap')) + '</dt><dd><a href="https://maps.gsi.go.jp/' +
      'development/ichiran.html" target="_blank" rel="noopener">' +
      esc(this.t('map_basemap_attr')) + '</a></dd></dl>';
    el.innerHTML = h;
  };

  // ---------------------------------------------------------------------------------------
  // One layer: embedded ("data") or loaded by view ("api")
  // ---------------------------------------------------------------------------------------
  function MapLayer(app, conf, index) {
    var self = this;
    this.app = app;
    this.conf = conf;
    this.id = conf.id;
    this.index = index;
    this.priority = {pipe: 0, structure: 1, parcel: 2}[conf.role];
    if (this.priority === undefined) { this.priority = 3; }
    this.renderer = conf.hazard ? app.svg : app.canvas;
    var date = conf.date ? {ja: fmt(app.cfg.text.map_as_of.ja, {date: conf.date}),
      en: fmt(app.cfg.text.map_as_of.en, {date: conf.date})} : app.cfg.text.map_date_unknown;
    // layers with the same source and date share one attribution (Leaflet counts them)
    this.group = L.featureGroup([], {attribution: '<span class="gm-attr">' +
      app.bi(conf.attribution) + ' (' + app.bi(date) + ')</span>'});
    this.content = L.featureGroup();
    this.features = new Map();  // feature id -> {layer, tiles: Set}
    this.tiles = new Map();     // tile key -> {state: 'loading'|'done', ids: Set}
    this.requests = new Set();
    this.inflight = 0;
    this.density = 0;
    this.tooMany = false;
    this.error = false;
    this.arrows = {};
    this.content.on('click', function (e) {
      var l = e.layer;
      if (!l || !l.feature || (l.getPopup && l.getPopup())) { return; }
      L.DomEvent.stop(e);
      app.openPopup(self, l.feature, e.latlng);
    });
  }

  MapLayer.prototype.inRange = function () {
    var z = this.app.map.getZoom();
    return z >= this.conf.minZoom && z <= this.conf.maxZoom;
  };
  MapLayer.prototype.visible = function () {
    return this.app.map.hasLayer(this.group) && this.inRange();
  };
  MapLayer.prototype.updateRange = function () {
    var has = this.group.hasLayer(this.content);
    if (this.inRange() && !has) {
      this.group.addLayer(this.content);
      if (this.app.map.hasLayer(this.group)) { this.app.restackFrom(this.index); }
    } else if (!this.inRange() && has) { this.group.removeLayer(this.content); }
  };

  // ---- style
  MapLayer.prototype.colorByOf = function (field) {
    return this.conf.colorBy.find(function (cb) { return cb.field === field; });
  };
  MapLayer.prototype.colorField = function () {
    return this.app.colorField[this.id] || (this.conf.colorBy[0] && this.conf.colorBy[0].field);
  };
  /** A hazard zone's colour: an emphasised rank's own, else its group's or its rank's. */
  MapLayer.prototype.hazardColor = function (p) {
    var h = this.conf.hazard, e = h.emphasis[p.r];
    if (typeof e === 'string') { return {c: e, emph: true}; }
    if (e && e[p.g]) { return {c: e[p.g], emph: true}; }
    if (h.colorGroup && h.groups[p.g]) { return {c: h.groups[p.g].color, emph: false}; }
    var r = h.ranks[p.r];
    return {c: r ? r.color : this.conf.style.color, emph: false};
  };
  MapLayer.prototype.colorOf = function (p) {
    var field = this.colorField();
    if (field) {
      var cb = this.colorByOf(field), e = cb && cb.codes[code(p[field])];
      if (e) { return e.color; }
    }
    return this.conf.style.color;
  };
  MapLayer.prototype.widthOf = function (p) {
    var wb = this.conf.widthBy, w = this.conf.style.weight;
    if (!wb) { return w; }
    var v = p[wb.field];
    w = wb.classes[0][1];
    if (v === null || v === undefined) { return w; }
    wb.classes.forEach(function (c) { if (Number(v) >= c[0]) { w = c[1]; } });
    return w;
  };
  MapLayer.prototype.styleOf = function (p) {
    var c = this.conf, st = c.style, g = c.geometry, w = this.widthOf(p), col, emph = false;
    if (c.hazard) {
      var hc = this.hazardColor(p);
      col = hc.c;
      emph = hc.emph;
    } else {
      col = this.colorOf(p);
    }
    var cls = c.hazard ? 'hz-' + c.hazard.kind + (emph ? ' hz-emph' : '') : 'gm-f-' + c.id;
    if (g === 'line') {
      return {color: col, weight: w, opacity: 0.95, lineCap: 'butt', dashArray: st.dash,
        renderer: this.renderer, className: cls};
    }
    if (g === 'polygon') {
      if (emph) {
        return {color: col, weight: w * 1.43, opacity: 1, fill: true, fillColor: col,
          fillOpacity: Math.min(1, st.fillOpacity + 0.2), dashArray: null,
          renderer: this.renderer, className: cls};
      }
      return {color: st.outline || col, weight: w, opacity: 0.9, fill: true,
        fillColor: st.fill || col, fillOpacity: st.fillOpacity, dashArray: st.dash,
        renderer: this.renderer, className: cls};
    }
    return {radius: st.radius, color: st.outline || (st.fill ? col : '#ffffff'), weight: w,
      opacity: 1, fillColor: st.fill || col, fillOpacity: 1, renderer: this.renderer,
      className: cls};
  };
  MapLayer.prototype.makeLayer = function (f) {
    var p = f.properties || {}, style = this.styleOf(p), l;
    if (this.conf.hazard) { style.interactive = false; }
    if (f.geometry.type === 'Point') {
      var c = f.geometry.coordinates, ll = L.latLng(c[1], c[0]);
      l = this.app.emit('pointLayer', this, f, ll) || L.circleMarker(ll, style);
    } else {
      try { l = L.GeoJSON.geometryToLayer(f, style); } catch (e) { return null; }
    }
    l.feature = f;
    return l;
  };
  MapLayer.prototype.restyle = function () {
    var self = this;
    this.features.forEach(function (rec) {
      if (rec.layer.setStyle) { rec.layer.setStyle(self.styleOf(rec.layer.feature.properties || {})); }
    });
    this.updateArrows();
  };

  // ---- embedded features
  MapLayer.prototype.setData = function (features) {
    var self = this, added = [];
    features.forEach(function (f) {
      if (!f.geometry) { return; }
      var l = self.makeLayer(f);
      if (!l) { return; }
      self.features.set(f.id, {layer: l});
      self.content.addLayer(l);
      added.push(l);
    });
    if (added.length && this.app.map.hasLayer(this.content)) { this.app.place(this, added); }
    this.app.map.getContainer().dataset['loaded_' + this.id] = String(this.features.size);
    this.updateArrows();
  };

  // ---- flow arrows (leaflet-polylinedecorator), one decorator per colour
  MapLayer.prototype.updateArrows = function () {
    var self = this;
    if (!this.conf.style.arrows || !L.polylineDecorator) { return; }
    if (this.arrowTimer) { clearTimeout(this.arrowTimer); }
    this.arrowTimer = setTimeout(function () { self.drawArrows(); }, 60);
  };
  MapLayer.prototype.drawArrows = function () {
    var self = this, byColor = {};
    this.features.forEach(function (rec) {
      if (!rec.layer.getLatLngs) { return; }
      var c = rec.layer.options.color;
      (byColor[c] = byColor[c] || []).push(rec.layer.getLatLngs());
    });
    Object.keys(this.arrows).forEach(function (c) {
      if (!byColor[c]) { self.content.removeLayer(self.arrows[c]); delete self.arrows[c]; }
    });
    Object.keys(byColor).forEach(function (c) {
      if (self.arrows[c]) {
        self.arrows[c].setPaths(byColor[c]);
      } else {
        self.arrows[c] = L.polylineDecorator(byColor[c], {patterns: [{
          offset: '50%', repeat: 0,
          symbol: L.Symbol.arrowHead({pixelSize: 9, headAngle: 50, polygon: true, pathOptions: {
            stroke: false, fill: true, fillColor: c, fillOpacity: 1, interactive: false,
            renderer: self.renderer}})}]});
        self.content.addLayer(self.arrows[c]);
      }
    });
    requestAnimationFrame(function () { self.app.restackFrom(self.index); });
  };

  // ---- view loading: tiles -> merged bbox requests -> paged GeoJSON -> canvas layers
  /** A tile is covered when it, or a coarser tile containing it, is loaded or loading. */
  MapLayer.prototype.covered = function (t) {
    for (var z = t.z; z >= this.app.cfg.tileZoom; z--) {
      var d = t.z - z;
      if (this.tiles.has(z + '/' + (t.x >> d) + '/' + (t.y >> d))) { return true; }
    }
    return false;
  };
  MapLayer.prototype.update = function (tiles, z, view) {
    var self = this, cfg = this.app.cfg;
    var visible = this.visible();
    this.requests.forEach(function (req) {
      if (!visible || !req.bounds.intersects(view)) { self.abort(req); }
    });
    if (!visible) { this.tooMany = false; return; }
    var units = tiles.length / Math.pow(4, tiles[0].z - cfg.tileZoom);  // in coarsest tiles
    if (this.density * units > cfg.maxFeatures) { this.tooMany = true; return; }
    this.tooMany = false;
    var missing = tiles.filter(function (t) { return !self.covered(t); });
    if (missing.length) {
      mergeRects(missing).forEach(function (r) { self.request(r, tiles[0].z); });
    }
    this.evict(view);
  };
  MapLayer.prototype.abort = function (req) {
    var self = this;
    req.ctrl.abort();
    this.requests.delete(req);
    req.keys.forEach(function (k) {
      var t = self.tiles.get(k);
      if (t && t.state === 'loading') { self.tiles.delete(k); }
    });
    this.app.stats.aborted++;
  };
  MapLayer.prototype.request = function (rect, z) {
    var self = this, app = this.app, keys = [];
    for (var x = rect.x0; x <= rect.x1; x++) {
      for (var y = rect.y0; y <= rect.y1; y++) {
        var key = z + '/' + x + '/' + y;
        keys.push(key);
        this.tiles.set(key, {state: 'loading', ids: new Set(), bounds: L.latLngBounds(
          [tileLat(y + 1, z), tileLon(x, z)], [tileLat(y, z), tileLon(x + 1, z)])});
      }
    }
    var w = tileLon(rect.x0, z), s = tileLat(rect.y1 + 1, z), e = tileLon(rect.x1 + 1, z), n = tileLat(rect.y0, z);
    var bbox = [w, s, e, n].map(function (v) { return v.toFixed(7); }).join(',');
    rect.z = z;
    var req = {ctrl: new AbortController(), keys: keys, rect: rect, priority: this.priority,
      bounds: L.latLngBounds([s, w], [n, e]), units: keys.length / Math.pow(4, z - app.cfg.tileZoom)};
    this.requests.add(req);
    req.run = function () { return self.run(req, bbox); };
    app.enqueue(req);
  };
  MapLayer.prototype.run = function (req, bbox) {
    var self = this, app = this.app, cfg = app.cfg;
    var props = (this.conf.properties || []).join(',');
    var query = 'f=json&limit=' + cfg.maxItems + '&bbox=' + bbox +
      (props ? '&properties=' + encodeURIComponent(props) : '');
    var url = app.itemsUrl(this.id, query), pages = 0;
    var maxPages = Math.ceil(cfg.maxFeatures / cfg.maxItems) + 2;
    this.inflight++;
    app.updateStatus();
    var step = function () {
      if (req.ctrl.signal.aborted) { return null; }
      app.stats.requests++;
      return fetch(url, {signal: req.ctrl.signal, headers: {Accept: 'application/geo+json'}})
        .then(function (r) { if (!r.ok) { throw new Error('HTTP ' + r.status); } return r.json(); })
        .then(function (fc) {
          if (req.ctrl.signal.aborted) { return null; }
          pages++;
          var matched = typeof fc.numberMatched === 'number' ? fc.numberMatched : null;
          if (pages === 1 && matched !== null) {
            self.density = Math.max(self.density, matched / req.units);
            if (matched > cfg.maxFeatures) {
              self.tooMany = true;
              self.abort(req);
              return null;
            }
          }
          self.add(fc.features || [], req);
          var next = (fc.links || []).find(function (l) { return l.rel === 'next'; });
          if (next && (fc.features || []).length && pages < maxPages) {
            url = app.rebase(next.href, self.id);
            return step();
          }
          return null;
        });
    };
    return step().then(function () {
      if (req.ctrl.signal.aborted) { return; }
      self.error = false;
      self.retryMs = 0;
      req.keys.forEach(function (k) {
        var t = self.tiles.get(k);
        if (t) { t.state = 'done'; }
      });
      self.requests.delete(req);
    }, function (err) {
      if (req.ctrl.signal.aborted || (err && err.name === 'AbortError')) { return; }
      self.requests.delete(req);
      req.keys.forEach(function (k) { self.tiles.delete(k); });
      self.error = true;
      self.retryMs = Math.min((self.retryMs || 2000) * 2, 60000);  // 4 s, 8 s, ... 1 min
      setTimeout(function () { self.error = false; app.refresh(); }, self.retryMs);
    }).then(function () {
      self.inflight--;
      app.updateStatus();
      app.map.getContainer().dataset['loaded_' + self.id] = String(self.features.size);
    });
  };
  MapLayer.prototype.add = function (features, req) {
    var self = this, app = this.app, r = req.rect, z = r.z, added = [];
    features.forEach(function (f) {
      if (!f.geometry || f.id === undefined || f.id === null) { return; }
      var b = geomBounds(f.geometry);
      var x0 = Math.max(r.x0, tileX(b[0], z)), x1 = Math.min(r.x1, tileX(b[2], z));
      var y0 = Math.max(r.y0, tileY(b[3], z)), y1 = Math.min(r.y1, tileY(b[1], z));
      var rec = self.features.get(f.id);
      if (!rec) {
        var layer = self.makeLayer(f);
        if (!layer) { return; }
        rec = {layer: layer, tiles: new Set()};
        self.features.set(f.id, rec);
        self.content.addLayer(layer);
        added.push(layer);
      }
      for (var x = x0; x <= x1; x++) {
        for (var y = y0; y <= y1; y++) {
          var key = z + '/' + x + '/' + y, t = self.tiles.get(key);
          if (t) { t.ids.add(f.id); rec.tiles.add(key); }
        }
      }
    });
    if (added.length) {
      app.stats.features += added.length;
      if (app.map.hasLayer(this.content)) { app.place(this, added); }
      this.updateArrows();
      app.updateLabels();
    }
  };
  /** Drop tiles (and features only they hold) when a layer keeps far more than a view. */
  MapLayer.prototype.evict = function (view) {
    var self = this, limit = this.app.cfg.maxFeatures * 2;
    if (this.features.size <= limit) { return; }
    this.tiles.forEach(function (t, key) {
      if (t.state !== 'done' || t.bounds.intersects(view)) { return; }
      t.ids.forEach(function (id) {
        var rec = self.features.get(id);
        if (!rec) { return; }
        rec.tiles.delete(key);
        if (!rec.tiles.size) { self.content.removeLayer(rec.layer); self.features.delete(id); }
      });
      self.tiles.delete(key);
    });
    this.updateArrows();
  };

  // ---------------------------------------------------------------------------------------
  G.esc = esc;
  G.fmt = fmt;
  G.fillTemplate = fillTemplate;
  G.mergeRects = mergeRects;
  G.start = function () {
    var cfg = JSON.parse(document.getElementById('gm-config').textContent);
    var app = new App(cfg);
    G.app = app;
    app.start();
    return app;
  };
})();
