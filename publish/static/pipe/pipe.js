/*
 * Uozu pipe map (管路図): loads the features of the current view from the OGC API.
 *
 * Why this file exists: the city network is far too large to embed in one page, so the page
 * asks the API for the current view only (zoom >= 16), caches by z16 tile, follows `next` links
 * for paging and aborts requests for views the user has left. Everything else (search, terms,
 * legend, popups) is plain Leaflet. Configuration comes from publish/maps_pipe.py as JSON.
 */
(function () {
  'use strict';

  // ---------------------------------------------------------------------------------------
  // 地番 normalisation: a port of etl.normalize._nfkc/_chiban_parse (tests compare the two).
  // ---------------------------------------------------------------------------------------
  var HYPHENS = /[\u02d7\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\u2500\u2501\ufe58\ufe63\uff0d]/g;
  var CHOON = /(?<=[0-9A-Za-z])\u30fc(?=[0-9A-Za-z])/g;
  var INVISIBLE = /[\u200b\u200c\u200d\u2060\ufeff]/g;
  var CHIBAN_SPECIAL = /^(?:地区外|区域外|別図|不明|不詳|未定|番外|無番|無地番)/;
  var CHIBAN_SEP = /(?<=\d)(?:番地の?|番の?|の|ノ|之|-)(?=\d)/g;
  var CHIBAN_TAIL = /(?<=\d)(?:番地|番)$/;
  var CHIBAN_RE = /^([\u3041-\u3096\u30a1-\u30fa\u4e00-\u9fff々〆]{0,10})(\d+(?:-\d+)*)$/;

  function nfkc(v) {
    if (v === null || v === undefined) { return null; }
    var s = String(v).normalize('NFKC').replace(HYPHENS, '-').replace(CHOON, '-')
      .replace(INVISIBLE, '').replace(/\s+/g, ' ').trim();
    return s || null;
  }

  function normalizeChiban(v) {
    var text = nfkc(v);
    if (text === null) { return null; }
    var s = text.replace(/ /g, '');
    if (CHIBAN_SPECIAL.test(s)) { return text; }
    s = s.replace(CHIBAN_SEP, '-').replace(CHIBAN_TAIL, '');
    var m = CHIBAN_RE.exec(s);
    if (!m) { return text; }
    return m[1] + m[2].split('-').map(function (p) { return String(parseInt(p, 10)); }).join('-');
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  }

  // ---------------------------------------------------------------------------------------
  // Web Mercator tiles (the cache key space)
  // ---------------------------------------------------------------------------------------
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

  // ---------------------------------------------------------------------------------------
  // The application
  // ---------------------------------------------------------------------------------------
  function App(map, cfg, control) {
    this.map = map;
    this.cfg = cfg;
    this.control = control;
    this.mode = 'type';
    this.renderer = L.canvas({padding: 0.3, tolerance: 6});
    this.queue = [];
    this.active = 0;
    this.maxActive = 3;
    this.loaders = {};
    this.order = [];
    this.consented = false;
    this.stats = {requests: 0, aborted: 0, features: 0};
    this.popup = L.popup({maxWidth: 380, minWidth: 220, autoPanPadding: [20, 20]});
  }

  App.prototype.txt = function (key, params) {
    var m = this.cfg.text[key] || {ja: key, en: key};
    var fill = function (s) {
      return s.replace(/\{(\w+)\}/g, function (_, k) { return params && k in params ? params[k] : ''; });
    };
    return {ja: fill(m.ja), en: fill(m.en)};
  };
  /** Bilingual HTML: Japanese first, English smaller. */
  App.prototype.html = function (key, params) {
    var m = this.txt(key, params);
    return '<span lang="ja">' + esc(m.ja) + '</span> <span lang="en" class="en">' + esc(m.en) + '</span>';
  };
  App.prototype.plain = function (key, params) {
    var m = this.txt(key, params);
    return m.ja + ' / ' + m.en;
  };

  App.prototype.start = function () {
    var self = this, map = this.map, cfg = this.cfg;
    map.getContainer().classList.add('uozu-pipe-map');
    this.buildPanes();
    this.buildLoaders();
    this.buildStatus();
    this.buildSearch();
    this.buildLegend();
    this.buildDates();
    if (cfg.attribution) { map.attributionControl.addAttribution(esc(cfg.attribution)); }
    map.on('moveend', function () {
      self.refresh();
      self.writeHash();
      requestAnimationFrame(function () { self.restack(); });
    });
    map.on('overlayadd overlayremove', function () { self.refresh(); self.updateArrows(); });
    map.on('locationfound', function (e) { self.onLocation(e); });
    map.on('locationerror', function (e) { self.onLocationError(e); });
    this.hash = this.readHash();
    if (this.hash.view) {
      map.setView([this.hash.view.lat, this.hash.view.lon], this.hash.view.z, {animate: false});
    }
    this.showTerms();
  };

  // ---- terms of use (versioned, remembered in localStorage)
  App.prototype.storedTerms = function () {
    try { return window.localStorage.getItem(this.cfg.storageKey); } catch (e) { return null; }
  };
  App.prototype.showTerms = function () {
    var self = this, cfg = this.cfg;
    if (this.storedTerms() === cfg.termsVersion) { this.onConsent(); return; }
    var dates = this.datesText();
    var box = document.createElement('div');
    box.className = 'pp-terms';
    box.setAttribute('role', 'dialog');
    box.setAttribute('aria-modal', 'true');
    box.id = 'pp-terms';
    var src = cfg.sources.map(function (s) {
      return '<li>' + esc(s.ja) + ' <span class="en">' + esc(s.en) + '</span></li>';
    }).join('');
    var contact = cfg.contact && cfg.contact.name ? '<p class="pp-contact">' + this.html('contact') + ': ' +
      esc(cfg.contact.name) + (cfg.contact.phone ? ' (' + esc(cfg.contact.phone) + ')' : '') + '</p>' : '';
    box.innerHTML =
      '<div class="pp-terms-card">' +
      '<h1>' + esc(cfg.city.ja) + ' ' + this.html('title') + '</h1>' +
      '<h2>' + this.html('terms_title') + ' <small>(' + this.html('terms_version', {v: cfg.termsVersion}) + ')</small></h2>' +
      '<ol>' +
      '<li>' + this.html('terms_ref') + '</li>' +
      '<li><strong>' + this.html('terms_confirm') + '</strong></li>' +
      '<li>' + this.html('terms_parcel') + '</li>' +
      '<li>' + this.html('terms_liability') + '</li>' +
      '</ol>' +
      '<p><b>' + this.html('terms_source') + ':</b></p><ul class="pp-src">' + src +
      '<li>' + this.html('basemap') + '</li></ul>' +
      '<p><b>' + this.html('terms_dates') + ':</b> ' + esc(dates) + '</p>' + contact +
      '<p><a href="' + esc(cfg.termsUrl) + '" target="_blank" rel="noopener">' + this.html('terms_full') + '</a></p>' +
      '<div class="pp-terms-buttons">' +
      '<button type="button" class="pp-agree" id="pp-agree">' + this.html('terms_agree') + '</button>' +
      '<button type="button" class="pp-decline" id="pp-decline">' + this.html('terms_decline') + '</button>' +
      '</div><p class="pp-declined" id="pp-declined" hidden>' + this.html('terms_declined') + '</p>' +
      '</div>';
    document.body.appendChild(box);
    box.querySelector('#pp-agree').addEventListener('click', function () {
      try { window.localStorage.setItem(cfg.storageKey, cfg.termsVersion); } catch (e) { /* private mode */ }
      box.remove();
      self.onConsent();
    });
    box.querySelector('#pp-decline').addEventListener('click', function () {
      box.querySelector('#pp-declined').hidden = false;
    });
    box.querySelector('#pp-agree').focus();
  };
  App.prototype.onConsent = function () {
    this.consented = true;
    document.body.classList.add('pp-consented');
    this.refresh();
    if (this.hash.oaza && this.hash.chiban) {
      this.search(this.hash.oaza, this.hash.chiban, true);
    }
  };

  // ---- panes, loaders and drawing order
  App.prototype.buildPanes = function () {
    var hp = this.map.createPane('pp-highlight');
    hp.style.zIndex = 450;
    hp.style.pointerEvents = 'none';
    this.highlightRenderer = L.svg({pane: 'pp-highlight'});
    this.highlight = L.layerGroup().addTo(this.map);
    this.labels = L.layerGroup().addTo(this.map);
    this.located = L.layerGroup().addTo(this.map);
  };

  App.prototype.buildLoaders = function () {
    var self = this;
    // fetch priority: pipes first, context last
    var priority = {sewer_pipe: 0, water_pipe: 1, sewer_manhole: 2, water_valve: 3, parcel: 4, road_segment: 5};
    this.cfg.layers.forEach(function (conf, i) {
      var loader = new Loader(self, conf, i, priority[conf.id] !== undefined ? priority[conf.id] : 9);
      self.loaders[conf.id] = loader;
      self.order.push(loader);
      loader.group.addTo(self.map);
      self.control.addOverlay(loader.group, esc(conf.title.ja) + ' <span class="en">' + esc(conf.title.en) + '</span>');
    });
  };

  /** Keep the canvas stacking: parcels < roads < water < sewer < arrows < manholes < hydrants. */
  App.prototype.restackFrom = function (index) {
    for (var i = index + 1; i < this.order.length; i++) {
      this.order[i].group.eachLayer(function (l) {
        if (l.bringToFront) { l.bringToFront(); }
      });
    }
  };
  App.prototype.restack = function () {
    var sewer = this.loaders.sewer_pipe;
    if (sewer) { this.restackFrom(this.order.indexOf(sewer)); }
  };

  /** Cache tiles one level coarser than the view (z16..18): little over-fetch at any zoom. */
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
    this.order.forEach(function (loader) { loader.update(tiles, z, view); });
    this.updateLabels();
    this.updateStatus();
  };

  // ---- a small request queue: a few requests at a time, by layer priority
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
  /** A `next` link, re-based on our own API path (pygeoapi writes its configured base URL). */
  App.prototype.rebase = function (href, layer) {
    var u = new URL(href, window.location.href);
    if (!u.searchParams.has('f')) { u.searchParams.set('f', 'json'); }
    return this.itemsUrl(layer, u.search.replace(/^\?/, ''));
  };

  // ---- styles
  App.prototype.weight = function (d) {
    var w = this.cfg.weights[0][1];
    this.cfg.weights.forEach(function (p) { if (d !== null && d !== undefined && d >= p[0]) { w = p[1]; } });
    return w;
  };
  App.prototype.colorOf = function (layer, p) {
    var st = this.cfg.styles, key, table;
    if (layer === 'sewer_pipe' || layer === 'sewer_manhole') {
      table = this.mode === 'material' && layer === 'sewer_pipe' ? st.sewer_material : st.sewer_flow;
      key = this.mode === 'material' && layer === 'sewer_pipe' ? p.material : p.flow_type;
    } else {
      table = this.mode === 'material' ? st.water_material : st.water_class;
      key = this.mode === 'material' ? p.material : p.pipe_class;
    }
    return (table && table[key] && table[key].color) || '#555555';
  };
  App.prototype.styleOf = function (layer, p) {
    switch (layer) {
      case 'parcel':
        return {color: '#7a7a7a', weight: 0.8, opacity: 0.9, fill: true, fillColor: '#ffffff', fillOpacity: 0.01};
      case 'road_segment':
        return {color: '#a8a8a8', weight: 2, opacity: 0.8};
      case 'water_pipe':
      case 'sewer_pipe':
        return {color: this.colorOf(layer, p), weight: this.weight(p.diameter_mm), opacity: 0.95,
          lineCap: 'butt'};
      case 'sewer_manhole':
        return {radius: 3.5, color: this.colorOf(layer, p), weight: 1.5, fillColor: '#ffffff', fillOpacity: 1};
      case 'water_valve':
        return {radius: 5, color: '#ffffff', weight: 1.5, fillColor: '#d32f2f', fillOpacity: 1};
    }
    return {};
  };
  App.prototype.setMode = function (mode) {
    var self = this;
    this.mode = mode;
    ['water_pipe', 'sewer_pipe'].forEach(function (id) {
      var loader = self.loaders[id];
      if (loader) {
        loader.features.forEach(function (rec) { rec.layer.setStyle(self.styleOf(id, rec.layer.feature.properties)); });
      }
    });
    this.updateArrows();
    this.renderLegend();
  };

  // ---- flow arrows (leaflet-polylinedecorator), one decorator per colour
  App.prototype.updateArrows = function () {
    var self = this;
    if (this.arrowTimer) { clearTimeout(this.arrowTimer); }
    this.arrowTimer = setTimeout(function () { self.drawArrows(); }, 60);
  };
  App.prototype.drawArrows = function () {
    var self = this, loader = this.loaders.sewer_pipe;
    if (!loader || !L.polylineDecorator) { return; }
    this.arrows = this.arrows || {};
    var byColor = {};
    loader.features.forEach(function (rec) {
      var c = rec.layer.options.color;
      (byColor[c] = byColor[c] || []).push(rec.layer.getLatLngs());
    });
    Object.keys(this.arrows).forEach(function (c) {
      if (!byColor[c]) { loader.group.removeLayer(self.arrows[c]); delete self.arrows[c]; }
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
        self.arrows[c]._ppArrow = true;
        loader.group.addLayer(self.arrows[c]);
      }
    });
    requestAnimationFrame(function () { self.restack(); });
  };

  // ---- popups
  App.prototype.formatValue = function (f, p) {
    var v = p[f.name];
    if (f.kind === 'fy') {
      var raw = f.raw ? nfkc(p[f.raw]) : null, q = f.qual ? p[f.qual] : null;
      if (v === null || v === undefined) {
        return raw ? esc(raw) + ' (' + this.html('fy_unknown') + ')' : '—';
      }
      var year = String(v);
      if (q === 'approx') { year = 'c. ' + year; }
      else if (q === 'before') { year = '–' + year; }
      else if (q === 'after') { year = year + '–'; }
      return raw ? esc(raw) + ' (' + esc(year) + ')' : esc(year);
    }
    if (v === null || v === undefined || v === '') { return '—'; }
    if (f.label) {
      var label = p[f.label];
      return label ? '<span class="pp-v">' + esc(label) + '</span> <span class="pp-code">(' + esc(v) + ')</span>'
        : esc(v);
    }
    var s = typeof v === 'number' && f.digits !== undefined ? v.toFixed(f.digits) : String(v);
    return esc(s) + (f.unit ? ' ' + esc(f.unit) : '');
  };
  App.prototype.popupHtml = function (conf, feature) {
    var self = this, p = feature.properties || {};
    var rows = conf.fields.map(function (f) {
      return '<tr data-field="' + esc(f.name) + '"><th>' + esc(f.title.ja) + '<br><span class="en">' +
        esc(f.title.en) + '</span></th><td>' + self.formatValue(f, p) + '</td></tr>';
    }).join('');
    var h = '<div class="pp-popup" data-layer="' + esc(conf.id) + '" data-id="' + esc(feature.id) + '">' +
      '<h3>' + esc(conf.title.ja) + ' <span class="en">' + esc(conf.title.en) + '</span></h3>' +
      '<table>' + rows + '</table>';
    if (conf.id === 'parcel' && this.cfg.sheet && p.oaza_name && p.chiban) {
      h += this.sheetButtons(p.oaza_name, p.chiban);
    }
    return h + '</div>';
  };
  App.prototype.sheetButtons = function (oaza, chiban) {
    var sh = this.cfg.sheet, out = '<div class="pp-sheet"><b>' + this.html('sheet') + '</b><div>';
    sh.papers.forEach(function (paper) {
      sh.scales.forEach(function (scale) {
        out += '<button type="button" class="pp-sheet-btn" data-oaza="' + esc(oaza) + '" data-chiban="' +
          esc(chiban) + '" data-scale="' + scale + '" data-paper="' + paper + '">1/' + scale + ' ' + paper + '</button>';
      });
    });
    return out + '</div><p class="pp-sheet-status" aria-live="polite"></p></div>';
  };
  App.prototype.openPopup = function (conf, feature, latlng) {
    var self = this;
    this.popup.setLatLng(latlng).setContent(this.popupHtml(conf, feature)).openOn(this.map);
    var el = this.popup.getElement();
    if (el) {
      el.querySelectorAll('.pp-sheet-btn').forEach(function (btn) {
        btn.addEventListener('click', function () { self.requestSheet(btn, el.querySelector('.pp-sheet-status')); });
      });
    }
  };

  // ---- pipe sheet PDF (OGC API - Processes execution is POST-only in pygeoapi 0.21)
  App.prototype.requestSheet = function (btn, status) {
    var self = this, d = btn.dataset;
    var body = {inputs: {oaza: d.oaza, chiban: d.chiban, scale: Number(d.scale), paper: d.paper}};
    status.innerHTML = this.html('sheet_making');
    btn.disabled = true;
    fetch(this.cfg.sheet.url, {method: 'POST', headers: {'Content-Type': 'application/json',
      Accept: 'application/pdf'}, body: JSON.stringify(body)})
      .then(function (r) {
        var ct = r.headers.get('Content-Type') || '';
        if (r.ok && ct.indexOf('pdf') >= 0) {
          return r.blob().then(function (blob) {
            var url = URL.createObjectURL(blob);
            var name = 'pipe-sheet_' + d.oaza + '_' + d.chiban + '_1-' + d.scale + '_' + d.paper + '.pdf';
            status.innerHTML = self.html('sheet_done') + ' <a class="pp-sheet-link" href="' + url +
              '" target="_blank" rel="noopener" download="' + esc(name) + '">' + esc(name) + '</a>';
            status.querySelector('a').click();
          });
        }
        return r.text().then(function (t) {
          var msg = '';
          try { msg = (JSON.parse(t).description || '').replace(/^Error executing process: /, ''); } catch (e) { msg = ''; }
          status.innerHTML = '<span class="pp-error">' + self.html('sheet_failed') + (msg ? ': ' + esc(msg) : '') + '</span>';
        });
      }, function () {
        status.innerHTML = '<span class="pp-error">' + self.html('sheet_failed') + '</span>';
      })
      .then(function () { btn.disabled = false; });
  };

  // ---- 地番 labels at close zoom
  App.prototype.updateLabels = function () {
    var parcel = this.loaders.parcel, labels = this.labels;
    labels.clearLayers();
    if (!parcel || !this.map.hasLayer(parcel.group) || this.map.getZoom() < this.cfg.labelZoom) { return; }
    var b = this.map.getBounds(), n = 0;
    parcel.features.forEach(function (rec) {
      if (n > 1500) { return; }
      var p = rec.layer.feature.properties;
      if (!p.chiban || !b.intersects(rec.layer.getBounds())) { return; }
      if (!rec.center) { rec.center = rec.layer.getCenter(); }
      if (!b.contains(rec.center)) { return; }
      n++;
      L.marker(rec.center, {interactive: false, keyboard: false, icon: L.divIcon({
        className: 'pp-chiban', html: '<span>' + esc(p.chiban) + '</span>', iconSize: null})}).addTo(labels);
    });
  };

  // ---- status line (zoom hint, loading, too many, errors)
  App.prototype.buildStatus = function () {
    var el = document.createElement('div');
    el.className = 'pp-status';
    el.id = 'pp-status';
    el.setAttribute('aria-live', 'polite');
    this.map.getContainer().appendChild(el);
    this.statusEl = el;
  };
  App.prototype.updateStatus = function () {
    var self = this, z = this.map.getZoom(), parts = [];
    if (!this.statusEl) { return; }
    if (z < this.cfg.minZoom) { parts.push(this.html('zoom_hint', {z: this.cfg.minZoom})); }
    var loading = this.order.some(function (l) { return l.inflight > 0; }) || this.queue.length > 0;
    this.order.forEach(function (l) {
      if (l.tooMany && self.map.hasLayer(l.group) && z >= l.conf.minZoom) {
        parts.push(self.html('too_many', {layer: l.conf.title.ja}));
      }
      if (l.error) { parts.push('<span class="pp-error">' + self.html('load_error', {layer: l.conf.title.ja}) + '</span>'); }
    });
    if (loading) { parts.push(this.html('loading')); }
    this.statusEl.innerHTML = parts.map(function (p) { return '<div>' + p + '</div>'; }).join('');
    this.statusEl.hidden = parts.length === 0;
    this.map.getContainer().dataset.loading = loading ? '1' : '0';
  };

  // ---- data dates
  App.prototype.datesText = function () {
    var dd = this.cfg.dataDates, vals = Object.keys(dd).map(function (k) { return dd[k]; });
    if (!vals.length) { return '—'; }
    var uniq = vals.filter(function (v, i) { return vals.indexOf(v) === i; });
    if (uniq.length === 1) { return uniq[0]; }
    var self = this;
    return this.cfg.layers.filter(function (l) { return dd[l.id]; }).map(function (l) {
      return l.title.ja + ' ' + dd[l.id];
    }).join('、') || self.plain('fy_unknown');
  };
  App.prototype.buildDates = function () {
    var self = this;
    var ctl = L.control({position: 'bottomleft'});
    ctl.onAdd = function () {
      var d = L.DomUtil.create('div', 'pp-dates leaflet-control');
      d.id = 'pp-dates';
      d.innerHTML = self.html('data_as_of') + ': <b>' + esc(self.datesText()) + '</b>' +
        ' · <a href="' + esc(self.cfg.termsUrl) + '" target="_blank" rel="noopener">' + self.html('terms_full') + '</a>';
      return d;
    };
    ctl.addTo(this.map);
  };

  // ---- search (大字 + 地番) and my location
  App.prototype.buildSearch = function () {
    var self = this, cfg = this.cfg;
    var ctl = L.control({position: 'topleft'});
    ctl.onAdd = function () {
      var d = L.DomUtil.create('div', 'pp-search leaflet-control');
      var opts = cfg.oaza.map(function (o) { return '<option value="' + esc(o) + '">' + esc(o) + '</option>'; }).join('');
      d.innerHTML =
        '<form id="pp-search-form" autocomplete="off">' +
        '<div class="pp-search-title">' + self.html('search_title') + '</div>' +
        '<label>' + self.html('search_oaza') + '<select id="pp-oaza" name="oaza">' + opts + '</select></label>' +
        '<label>' + self.html('search_chiban') + '<input id="pp-chiban" name="chiban" type="text" inputmode="text" ' +
        'placeholder="' + esc(self.txt('search_placeholder').ja) + '"></label>' +
        '<div class="pp-search-buttons"><button type="submit" id="pp-search-go">' + self.html('search_go') + '</button>' +
        '<button type="button" id="pp-locate">' + self.html('locate') + '</button></div>' +
        '<div id="pp-search-msg" class="pp-search-msg" aria-live="polite"></div>' +
        '</form>';
      L.DomEvent.disableClickPropagation(d);
      L.DomEvent.disableScrollPropagation(d);
      d.querySelector('form').addEventListener('submit', function (ev) {
        ev.preventDefault();
        self.search(d.querySelector('#pp-oaza').value, d.querySelector('#pp-chiban').value, false);
      });
      d.querySelector('#pp-locate').addEventListener('click', function () { self.locate(); });
      return d;
    };
    ctl.addTo(this.map);
  };
  App.prototype.searchMsg = function (html, isError) {
    var el = document.getElementById('pp-search-msg');
    if (el) { el.innerHTML = isError ? '<span class="pp-error">' + html + '</span>' : html; }
  };
  App.prototype.search = function (oaza, chibanInput, fromHash) {
    var self = this, chiban = normalizeChiban(chibanInput), oz = nfkc(oaza);
    if (!oz || !chiban) { this.searchMsg(this.html('search_empty'), true); return Promise.resolve(null); }
    var sel = document.getElementById('pp-oaza');
    if (sel && fromHash) { sel.value = oz; }
    var inp = document.getElementById('pp-chiban');
    if (inp && fromHash) { inp.value = chiban; }
    var q = 'f=json&limit=20&oaza_name=' + encodeURIComponent(oz) + '&chiban=' + encodeURIComponent(chiban);
    this.searchMsg(this.html('loading'));
    return fetch(this.itemsUrl('parcel', q), {headers: {Accept: 'application/geo+json'}})
      .then(function (r) { if (!r.ok) { throw new Error('HTTP ' + r.status); } return r.json(); })
      .then(function (fc) {
        var feats = (fc.features || []).filter(function (f) { return f.geometry; });
        if (!feats.length) {
          self.searchMsg(self.html('search_none', {oaza: oz, chiban: chiban}), true);
          return null;
        }
        self.showParcel(feats, oz, chiban);
        return feats;
      })
      .catch(function () { self.searchMsg(self.html('search_error'), true); return null; });
  };
  App.prototype.showParcel = function (feats, oaza, chiban) {
    var self = this;
    this.highlight.clearLayers();
    var gj = L.geoJSON({type: 'FeatureCollection', features: feats}, {
      renderer: this.highlightRenderer, interactive: false,
      style: function () { return {color: '#ff6f00', weight: 4, opacity: 1, fillColor: '#ffeb3b', fillOpacity: 0.35}; }
    });
    gj.addTo(this.highlight);
    this.selected = {oaza: oaza, chiban: chiban, ids: feats.map(function (f) { return f.id; })};
    var b = gj.getBounds();
    this.map.fitBounds(b, {maxZoom: 19, padding: [40, 40], animate: false});
    var conf = this.cfg.layers.find(function (l) { return l.id === 'parcel'; });
    // anchored on the parcel's north edge, so the popup does not hide the parcel
    if (conf) { this.openPopup(conf, feats[0], L.latLng(b.getNorth(), b.getCenter().lng)); }
    this.searchMsg(this.html('search_found', {oaza: oaza, chiban: chiban}));
    this.map.getContainer().dataset.selected = feats.map(function (f) { return f.id; }).join(',');
    this.writeHash();
    self.refresh();
  };
  App.prototype.locate = function () {
    if (!navigator.geolocation) { this.searchMsg(this.html('locate_failed'), true); return; }
    this.searchMsg(this.html('loading'));
    this.map.locate({setView: true, maxZoom: 18, enableHighAccuracy: true, timeout: 15000});
  };
  App.prototype.onLocation = function (e) {
    this.located.clearLayers();
    L.circle(e.latlng, {radius: e.accuracy, color: '#1565c0', weight: 1, fillOpacity: 0.1,
      renderer: this.highlightRenderer, interactive: false}).addTo(this.located);
    L.circleMarker(e.latlng, {radius: 7, color: '#ffffff', weight: 2, fillColor: '#1565c0', fillOpacity: 1,
      renderer: this.highlightRenderer, interactive: false}).addTo(this.located);
    this.searchMsg(this.html('locate_found', {m: Math.round(e.accuracy)}));
  };
  App.prototype.onLocationError = function (e) {
    var denied = e && (e.code === 1 || /denied/i.test(e.message || ''));
    this.searchMsg(this.html(denied ? 'locate_denied' : 'locate_failed'), true);
  };

  // ---- URL hash: #map=z/lat/lon&oaza=..&chiban=.. (the PDF's QR code links here)
  App.prototype.readHash = function () {
    var out = {};
    var h = window.location.hash.replace(/^#/, '');
    h.split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i < 0) { return; }
      var k = kv.slice(0, i), v;
      try { v = decodeURIComponent(kv.slice(i + 1)); } catch (e) { return; }
      if (k === 'map') {
        var p = v.split('/').map(Number);
        if (p.length === 3 && p.every(isFinite)) { out.view = {z: p[0], lat: p[1], lon: p[2]}; }
      } else if (k === 'oaza' || k === 'chiban') { out[k] = v; }
    });
    return out;
  };
  App.prototype.writeHash = function () {
    if (!window.history || !window.history.replaceState) { return; }
    var c = this.map.getCenter(), z = this.map.getZoom();
    var h = '#map=' + z + '/' + c.lat.toFixed(5) + '/' + c.lng.toFixed(5);
    if (this.selected) {
      h += '&oaza=' + encodeURIComponent(this.selected.oaza) + '&chiban=' + encodeURIComponent(this.selected.chiban);
    }
    window.history.replaceState(null, '', h);
  };

  // ---- legend (ja/en), with the colour mode switch
  App.prototype.buildLegend = function () {
    var self = this;
    var ctl = L.control({position: 'bottomright'});
    ctl.onAdd = function () {
      var d = L.DomUtil.create('div', 'pp-legend leaflet-control');
      d.id = 'pp-legend';
      L.DomEvent.disableClickPropagation(d);
      L.DomEvent.disableScrollPropagation(d);
      self.legendEl = d;
      return d;
    };
    ctl.addTo(this.map);
    this.renderLegend();
  };
  App.prototype.renderLegend = function () {
    var self = this, cfg = this.cfg, st = cfg.styles, pr = cfg.present || {};
    var line = function (color, w, label) {
      return '<li><svg width="34" height="12" aria-hidden="true"><line x1="2" y1="6" x2="32" y2="6" stroke="' +
        esc(color) + '" stroke-width="' + w + '"/></svg>' + label + '</li>';
    };
    var entry = function (e) { return esc(e.ja) + ' <span class="en">' + esc(e.en) + '</span>'; };
    var codes = function (table, present) {
      return Object.keys(table || {}).filter(function (c) { return !present || present.indexOf(c) >= 0; });
    };
    var open = window.innerWidth > 760 && window.innerHeight > 640 ? ' open' : '';
    var h = '<details' + open + '><summary>' + this.html('legend') + '</summary>';
    h += '<div class="pp-mode">' + this.html('color_by') + ': ' +
      '<label><input type="radio" name="pp-mode" value="type"' + (this.mode === 'type' ? ' checked' : '') + '>' + this.html('by_type') + '</label> ' +
      '<label><input type="radio" name="pp-mode" value="material"' + (this.mode === 'material' ? ' checked' : '') + '>' + this.html('by_material') + '</label></div>';
    var sp = pr.sewer_pipe || {}, wp = pr.water_pipe || {};
    if (this.loaders.sewer_pipe) {
      var sTable = this.mode === 'material' ? st.sewer_material : st.sewer_flow;
      var sCodes = codes(sTable, this.mode === 'material' ? sp.material : sp.flow_type);
      h += '<h4>' + this.html('sewer') + '</h4><ul>' + sCodes.map(function (c) {
        return line(sTable[c].color, 3, entry(sTable[c]) + (self.mode === 'material' ? ' <code>' + esc(c) + '</code>' : ''));
      }).join('') + '<li><span class="pp-arrow">➤</span>' + this.html('flow_dir') + '</li></ul>';
    }
    if (this.loaders.water_pipe) {
      var wTable = this.mode === 'material' ? st.water_material : st.water_class;
      var wCodes = codes(wTable, this.mode === 'material' ? wp.material : wp.pipe_class);
      h += '<h4>' + this.html('water') + '</h4><ul>' + wCodes.map(function (c) {
        return line(wTable[c].color, 3, entry(wTable[c]) + (self.mode === 'material' ? ' <code>' + esc(c) + '</code>' : ''));
      }).join('') + '</ul>';
    }
    h += '<h4>' + this.html('diameter') + '</h4><ul class="pp-weights">';
    cfg.weights.forEach(function (w, i) {
      var next = cfg.weights[i + 1];
      var label = next ? w[0] + '–' + (next[0] - 1) + ' mm' : '≥ ' + w[0] + ' mm';
      if (i === 0) { label = '< ' + next[0] + ' mm'; }
      h += line('#444444', w[1], esc(label));
    });
    h += '</ul><ul>';
    h += '<li><svg width="34" height="12" aria-hidden="true"><circle cx="17" cy="6" r="4" fill="#fff" stroke="#9467bd" stroke-width="1.5"/></svg>' + this.html('manhole') + '</li>';
    h += '<li><svg width="34" height="12" aria-hidden="true"><circle cx="17" cy="6" r="5" fill="#d32f2f" stroke="#fff" stroke-width="1.5"/></svg>' + this.html('hydrant') + '</li>';
    h += '<li><svg width="34" height="12" aria-hidden="true"><rect x="4" y="1" width="26" height="10" fill="none" stroke="#7a7a7a"/></svg>' + this.html('parcel') + '</li>';
    h += '<li><svg width="34" height="12" aria-hidden="true"><rect x="4" y="1" width="26" height="10" fill="#ffeb3b" fill-opacity="0.5" stroke="#ff6f00" stroke-width="3"/></svg>' + this.html('parcel_hit') + '</li>';
    h += line('#a8a8a8', 2, this.html('road'));
    h += '</ul></details>';
    this.legendEl.innerHTML = h;
    this.legendEl.querySelectorAll('input[name="pp-mode"]').forEach(function (r) {
      r.addEventListener('change', function () { if (r.checked) { self.setMode(r.value); } });
    });
  };

  // ---------------------------------------------------------------------------------------
  // One layer's view loader: tiles -> merged bbox requests -> paged GeoJSON -> canvas layers
  // ---------------------------------------------------------------------------------------
  function Loader(app, conf, index, priority) {
    var self = this;
    this.app = app;
    this.conf = conf;
    this.id = conf.id;
    this.index = index;
    this.priority = priority;
    this.group = L.featureGroup();
    this.features = new Map();  // feature id -> {layer, tiles: Set}
    this.tiles = new Map();     // tile key -> {state: 'loading'|'done', ids: Set}
    this.requests = new Set();
    this.inflight = 0;
    this.density = 0;           // most features per tile seen (to refuse too dense views)
    this.tooMany = false;
    this.error = false;
    this.group.on('click', function (e) {
      if (e.layer && e.layer.feature) {
        L.DomEvent.stop(e);
        app.openPopup(conf, e.layer.feature, e.latlng);
      }
    });
  }

  /** A tile is covered when it, or a coarser tile containing it, is loaded or loading. */
  Loader.prototype.covered = function (t) {
    for (var z = t.z; z >= this.app.cfg.tileZoom; z--) {
      var d = t.z - z;
      if (this.tiles.has(z + '/' + (t.x >> d) + '/' + (t.y >> d))) { return true; }
    }
    return false;
  };

  Loader.prototype.update = function (tiles, z, view) {
    var self = this, cfg = this.app.cfg;
    var visible = this.app.map.hasLayer(this.group) && z >= this.conf.minZoom;
    // cancel requests for areas the view has left (or the layer is hidden / zoomed out)
    this.requests.forEach(function (req) {
      if (!visible || !req.bounds.intersects(view)) { self.abort(req); }
    });
    if (!visible) { this.tooMany = false; return; }
    var units = tiles.length / Math.pow(4, tiles[0].z - cfg.tileZoom);  // in z16 tiles
    if (this.density * units > cfg.maxFeatures) { this.tooMany = true; return; }
    this.tooMany = false;
    var missing = tiles.filter(function (t) { return !self.covered(t); });
    if (missing.length) {
      mergeRects(missing).forEach(function (r) { self.request(r, tiles[0].z); });
    }
    this.evict(view);
  };

  Loader.prototype.abort = function (req) {
    var self = this;
    req.ctrl.abort();
    this.requests.delete(req);
    req.keys.forEach(function (k) {
      var t = self.tiles.get(k);
      if (t && t.state === 'loading') { self.tiles.delete(k); }
    });
    this.app.stats.aborted++;
  };

  Loader.prototype.request = function (rect, z) {
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

  Loader.prototype.run = function (req, bbox) {
    var self = this, app = this.app, cfg = app.cfg;
    var query = 'f=json&limit=' + cfg.maxItems + '&bbox=' + bbox + '&properties=' +
      encodeURIComponent(this.conf.properties.join(','));
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
      var el = app.map.getContainer();
      el.dataset['loaded_' + self.id] = String(self.features.size);
    });
  };

  Loader.prototype.add = function (features, req) {
    var self = this, app = this.app, r = req.rect, z = r.z, added = 0;
    features.forEach(function (f) {
      if (!f.geometry || f.id === undefined || f.id === null) { return; }
      var b = geomBounds(f.geometry);
      var x0 = Math.max(r.x0, tileX(b[0], z)), x1 = Math.min(r.x1, tileX(b[2], z));
      var y0 = Math.max(r.y0, tileY(b[3], z)), y1 = Math.min(r.y1, tileY(b[1], z));
      var rec = self.features.get(f.id);
      if (!rec) {
        var layer = self.makeLayer(f);
        if (!layer) { return; }
        layer.feature = f;
        rec = {layer: layer, tiles: new Set()};
        self.features.set(f.id, rec);
        self.group.addLayer(layer);
        if (self.id === 'parcel' && layer.bringToBack) { layer.bringToBack(); }
        added++;
      }
      for (var x = x0; x <= x1; x++) {
        for (var y = y0; y <= y1; y++) {
          var key = z + '/' + x + '/' + y, t = self.tiles.get(key);
          if (t) { t.ids.add(f.id); rec.tiles.add(key); }
        }
      }
    });
    if (added) {
      app.stats.features += added;
      if (this.id !== 'parcel') { app.restackFrom(this.index); }
      if (this.id === 'sewer_pipe') { app.updateArrows(); }
      if (this.id === 'parcel') { app.updateLabels(); }
    }
  };

  Loader.prototype.makeLayer = function (f) {
    var app = this.app, id = this.id, p = f.properties || {};
    var style = app.styleOf(id, p);
    style.renderer = app.renderer;
    if (f.geometry.type === 'Point') {
      var c = f.geometry.coordinates;
      return L.circleMarker([c[1], c[0]], style);
    }
    try {
      return L.GeoJSON.geometryToLayer(f, style);
    } catch (e) {
      return null;
    }
  };

  /** Drop tiles (and features only they hold) when a layer keeps far more than a view. */
  Loader.prototype.evict = function (view) {
    var self = this, limit = this.app.cfg.maxFeatures * 2;
    if (this.features.size <= limit) { return; }
    this.tiles.forEach(function (t, key) {
      if (t.state !== 'done' || t.bounds.intersects(view)) { return; }
      t.ids.forEach(function (id) {
        var rec = self.features.get(id);
        if (!rec) { return; }
        rec.tiles.delete(key);
        if (!rec.tiles.size) { self.group.removeLayer(rec.layer); self.features.delete(id); }
      });
      self.tiles.delete(key);
    });
    if (this.id === 'sewer_pipe') { this.app.updateArrows(); }
  };

  // ---------------------------------------------------------------------------------------
  window.UozuPipe = {
    normalizeChiban: normalizeChiban,
    nfkc: nfkc,
    mergeRects: mergeRects,
    init: function (map, cfg, control) {
      var app = new App(map, cfg, control);
      window.UozuPipe.app = app;
      app.start();
      return app;
    }
  };
})();
