/*
 * Map pages (built by publish/pages/page.py): one script for every page a city declares.
 *
 * The page embeds its configuration (<script id="gm-config">): layers with their style (colours
 * from the code lists), details, labels, legend and zoom range. Features are drawn from the
 * page's vector tiles (one PMTiles archive, read with HTTP range requests by the vendored
 * protomaps-leaflet): the whole network from city zoom on, each feature with its attributes
 * from the detail zoom on. Layers whose features must be at hand (shelters: focusable markers;
 * hazards: the risk card) also come in the page's data file (<page>.json).
 *
 * A tap (or Enter on the map, at its centre) lists every feature within a finger's reach, the
 * overlapping ones included; the list and the chosen feature's details go into the information
 * sheet, which sits below the map on phones and beside it on wide screens: nothing is ever drawn
 * over the map's content, so nothing covers a detail or its buttons.
 *
 * Behaviours (parcel.js: 地番 search, pipe sheets, pipes of a parcel; hazard.js: the risk card
 * and shelters) register in GisMap.behaviours and are switched on by the roles in the config.
 * Every text comes from the configuration, in the page languages (ja, en, やさしい日本語 =
 * 'ja@easy', where a missing easy text is the Japanese); one language is shown at a time. The
 * language is chosen before the first paint by lang.js (inlined in the page, the same rules as
 * the server pages) and switched with the top bar's select; behaviours hear it as 'lang'.
 *
 * The top bar's search box (search.js over the release's maps/search.json, loaded on first
 * focus) shows a hit on this page's layers here (the map goes there, the feature is selected);
 * a hit on another page opens that page with ?at=lat,lon&layer=..&fid=.., which every page
 * honours (the landing page's search links the same way).
 */
(function () {
  'use strict';

  var LS_LANG = 'gis-map-lang';  // lang.js's key (shared with the server pages)
  var LANGS = ['ja', 'en', 'ja@easy'];
  var EASY = 'ja@easy';
  var HIT_ZOOM = 18;          // a parcel or a place found by the search
  var OAZA_ZOOM = 16;         // a 大字 found by the search
  var TPL = /\{(\w+)(\.label)?(?::\.(\d+))?(\|lower)?\}/g;
  var REACH_PX = 22;          // a finger's reach around a tap (half a 44 px target)
  var ARROW_ZOOM = 17;        // flow arrows from this zoom on
  var FULL_WIDTH_ZOOM = 16;   // lines have their configured widths from this zoom on
  var LABEL_FONT = '600 12px system-ui, "Noto Sans CJK JP", sans-serif';
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

  function code(v) {
    if (v === null || v === undefined) { return null; }
    return typeof v === 'number' && Number.isInteger(v) ? String(v) : String(v);
  }

  /** The page language lang.js chose in <head> (else ?lang=, the remembered one, the default). */
  function initialLang(cfg) {
    if (window.GisLang) { return window.GisLang.get(); }
    var q = new URLSearchParams(window.location.search).get('lang');
    if (LANGS.indexOf(q) >= 0) { return q; }
    try {
      var s = window.localStorage.getItem(LS_LANG);
      if (LANGS.indexOf(s) >= 0) { return s; }
    } catch (e) { /* storage blocked: the default */ }
    return cfg.lang || 'ja';
  }

  /** ?at=lat,lon[&z=][&layer=&fid=][&label=]: a place another page (or a link) asks to show. */
  function atParam() {
    var q = new URLSearchParams(window.location.search), at = (q.get('at') || '').split(',');
    var lat = Number(at[0]), lon = Number(at[1]);
    if (at.length !== 2 || !isFinite(lat) || !isFinite(lon) || Math.abs(lat) > 90 ||
        Math.abs(lon) > 180) { return null; }
    var z = Number(q.get('z'));
    return {lat: lat, lon: lon, z: q.get('z') && isFinite(z) ? z : null, layer: q.get('layer'),
      fid: q.get('fid'), label: q.get('label'), kind: q.get('fid') ? 'feature' : 'place'};
  }

  /** Keep Tab inside ``box`` (a modal dialog) and call ``onEscape`` on Esc. */
  function trapFocus(box, onEscape) {
    box.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') { e.preventDefault(); onEscape(); return; }
      if (e.key !== 'Tab') { return; }
      var items = Array.prototype.filter.call(box.querySelectorAll(
        'a[href], button:not([disabled]), select, input, textarea, [tabindex]:not([tabindex="-1"])'),
      function (n) { return n.offsetParent !== null; });
      if (!items.length) { return; }
      var first = items[0], last = items[items.length - 1];
      if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
      else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
    });
  }

  // ---------------------------------------------------------------------------------------
  // Symbolizers the vector layer needs beyond protomaps-leaflet's own
  // ---------------------------------------------------------------------------------------
  /** An arrowhead at the middle of each line, pointing along it (sewer flow). */
  function ArrowSymbolizer(color, size) { this.color = color; this.size = size; }
  ArrowSymbolizer.prototype.draw = function (ctx, geom, z, f) {
    var size = this.size;
    ctx.fillStyle = this.color(z, f);
    ctx.globalAlpha = 1;
    geom.forEach(function (line) {
      if (line.length < 2) { return; }
      var total = 0, i, seg = [];
      for (i = 1; i < line.length; i++) {
        var d = Math.hypot(line[i].x - line[i - 1].x, line[i].y - line[i - 1].y);
        seg.push(d);
        total += d;
      }
      if (total < size * 3) { return; }
      var half = total / 2;
      for (i = 1; i < line.length; i++) {
        if (half <= seg[i - 1]) { break; }
        half -= seg[i - 1];
      }
      i = Math.min(i, line.length - 1);
      var a = line[i - 1], b = line[i], t = seg[i - 1] ? half / seg[i - 1] : 0;
      var x = a.x + (b.x - a.x) * t, y = a.y + (b.y - a.y) * t;
      var ang = Math.atan2(b.y - a.y, b.x - a.x);
      ctx.save();
      ctx.translate(x, y);
      ctx.rotate(ang);
      ctx.beginPath();
      ctx.moveTo(size * 0.6, 0);
      ctx.lineTo(-size * 0.6, size * 0.55);
      ctx.lineTo(-size * 0.6, -size * 0.55);
      ctx.closePath();
      ctx.fill();
      ctx.restore();
    });
  };

  /** A label symbolizer fed by a function (the layer's template) instead of one property. */
  function TemplateLabel(inner, text, where) { this.inner = inner; this.text = text; this.where = where; }
  TemplateLabel.prototype.place = function (layout, geom, feature) {
    var s = this.text(feature.props || {});
    if (!s) { return undefined; }
    var f = {props: {_l: s}, bbox: feature.bbox, geomType: feature.geomType, geom: feature.geom,
      numVertices: feature.numVertices};
    if (this.where === 'centre') {  // polygons: the middle of the outer ring's part in this tile
      var ring = geom[0], P = ring[0].constructor, x0 = Infinity, y0 = Infinity, x1 = -Infinity,
        y1 = -Infinity;
      ring.forEach(function (q) {
        x0 = Math.min(x0, q.x); x1 = Math.max(x1, q.x); y0 = Math.min(y0, q.y); y1 = Math.max(y1, q.y);
      });
      geom = [[new P((x0 + x1) / 2, (y0 + y1) / 2)]];
    }
    return this.inner.place(layout, geom, f);
  };

  // ---------------------------------------------------------------------------------------
  // The application
  // ---------------------------------------------------------------------------------------
  function App(cfg) {
    this.cfg = cfg;
    this.lang = initialLang(cfg);
    this.layers = {};
    this.order = [];
    this.stats = {firstPaint: null, drawn: null, tiles: 0, picks: 0};
    this.consented = !cfg.terms;
    this.behaviours = [];
    this.colorField = {};
    this.noticeState = null;
    this.picks = null;
    this.selected = null;
    var self = this;
    this.whenReady = new Promise(function (done) { self.becameReady = done; });
  }

  // ---- texts (ja, en, やさしい日本語: a missing easy text is the Japanese)
  App.prototype.t = function (key, vars) {
    var e = this.cfg.text[key];
    var s = e ? (e[this.lang] !== undefined ? e[this.lang] : e.ja) : key;
    return vars ? fmt(s, vars) : s;
  };
  /** A name ({ja, en[, ja@easy | easy]}: specs, code lists, config) in the page language. */
  App.prototype.lab = function (entry) {
    if (!entry) { return ''; }
    if (this.lang === EASY) { return entry[EASY] || entry.easy || entry.ja || ''; }
    return entry[this.lang] || entry.ja || '';
  };
  /** The BCP 47 tag of the page language (lang="" attributes: やさしい日本語 is Japanese). */
  App.prototype.htmlLang = function () { return this.lang === 'en' ? 'en' : 'ja'; };
  /** The locale numbers and dates are written in (やさしい日本語 as Japanese). */
  App.prototype.locale = function () { return this.lang === 'en' ? 'en-GB' : 'ja-JP'; };
  /** Every language (for HTML Leaflet keeps, e.g. attribution): CSS shows one. */
  App.prototype.bi = function (entry) {
    return '<span class="gm-ja" lang="ja">' + esc(entry.ja) + '</span>' +
      '<span class="gm-en" lang="en">' + esc(entry.en) + '</span>' +
      '<span class="gm-easy" lang="ja">' + esc(entry[EASY] || entry.easy || entry.ja) + '</span>';
  };
  App.prototype.both = function (key, vars) {
    var e = this.cfg.text[key] || {ja: key, en: key};
    return this.bi({ja: fmt(e.ja, vars), en: fmt(e.en, vars), 'ja@easy': fmt(e[EASY] || e.ja, vars)});
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
    document.documentElement.lang = this.htmlLang();
    document.documentElement.setAttribute('data-lang', this.lang);
    this.at = atParam();
    var map = this.map = L.map('gm-map', {zoomControl: true, maxZoom: cfg.view.maxZoom || 20,
      keyboard: true});
    this.svg = L.svg({padding: 0.3});
    var hp = map.createPane('gm-highlight');
    hp.style.zIndex = 450;
    hp.style.pointerEvents = 'none';
    this.highlightRenderer = L.svg({pane: 'gm-highlight'});
    this.highlight = L.layerGroup().addTo(map);
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
    this.located = L.layerGroup().addTo(map);
    this.buildStatus();
    G.behaviours.forEach(function (B) {
      if (B.applies(cfg)) { self.behaviours.push(B.create(self)); }
    });
    this.buildChrome();
    this.buildSheet();
    map.on('moveend', function () { self.writeHash(); self.updateStatus(); });
    map.on('zoomend', function () { self.order.forEach(function (l) { l.updateRange(); }); });
    map.on('overlayadd overlayremove', function () { self.repaint(); self.updateStatus(); });
    map.on('click', function (e) { self.tap(e.latlng, false); });
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
    var v = this.cfg.view, map = this.map, at = this.at;
    if (this.hash.view) {
      map.setView([this.hash.view.lat, this.hash.view.lon], this.hash.view.z, {animate: false});
    } else if (at) {  // a search hit (or a link) from another page
      map.setView([at.lat, at.lon], Math.min(at.z || (at.fid ? HIT_ZOOM : 17),
        map.getMaxZoom()), {animate: false});
    } else if (v.center && v.zoom !== null && v.zoom !== undefined) {
      map.setView(v.center, v.zoom, {animate: false});
    } else if (v.bounds) {
      map.fitBounds([[v.bounds[1], v.bounds[0]], [v.bounds[3], v.bounds[2]]], {animate: false});
      if (map.getZoom() < v.minStartZoom) {  // a small screen: where the data is dense
        map.setView(v.center || map.getCenter(), v.minStartZoom, {animate: false});
      }
    } else {
      map.setView([36.0, 138.0], 5, {animate: false});
    }
  };

  // ---- terms of use (versioned, remembered in localStorage): a named modal dialog
  App.prototype.storedTerms = function () {
    try { return window.localStorage.getItem(this.cfg.terms.storageKey); } catch (e) { return null; }
  };
  App.prototype.showTerms = function () {
    var self = this, cfg = this.cfg, tm = cfg.terms;
    if (!tm || this.storedTerms() === tm.version) { this.onConsent(); return; }
    var box = document.createElement('div');
    box.className = 'gm-terms';
    box.id = 'gm-terms';
    var paras = tm.paragraphs.map(function (p) { return '<li>' + self.bi(p) + '</li>'; }).join('');
    var src = cfg.sources.map(function (s) { return '<li>' + self.bi(s) + '</li>'; }).join('');
    var c = cfg.contact;
    var contact = c && c.name ? '<p class="gm-contact">' + this.both('map_contact') + ': ' +
      esc(c.name) + (c.phone ? ' (' + esc(c.phone) + ')' : '') + '</p>' : '';
    box.innerHTML =
      '<div class="gm-terms-card" role="dialog" aria-modal="true" aria-labelledby="gm-terms-title">' +
      '<label class="gm-terms-lang"><span class="gm-visually-hidden">' + this.both('lang_label') +
      '</span>' + this.langSelect('gm-terms-lang') + '</label>' +
      '<h1 id="gm-terms-title">' + this.bi(cfg.page.title) + '</h1>' +
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
      '</button></div><p class="gm-declined" id="gm-declined" role="alert" hidden>' +
      this.both('map_terms_declined') + '</p></div>';
    document.body.appendChild(box);
    var outside = document.querySelectorAll('body > :not(#gm-terms):not(script)');
    Array.prototype.forEach.call(outside, function (n) { n.setAttribute('inert', ''); });
    var decline = function () { box.querySelector('#gm-declined').hidden = false; };
    trapFocus(box, decline);
    this.wireLangSelect(box.querySelector('#gm-terms-lang'));
    box.querySelector('#gm-agree').addEventListener('click', function (e) {
      try { window.localStorage.setItem(tm.storageKey, tm.version); } catch (err) { /* private */ }
      Array.prototype.forEach.call(outside, function (n) { n.removeAttribute('inert'); });
      box.remove();
      self.onConsent();
      if (e.detail === 0) { document.getElementById('gm-map').focus({preventScroll: true}); }
    });
    box.querySelector('#gm-decline').addEventListener('click', decline);
    box.querySelector('#gm-agree').focus();
  };

  App.prototype.onConsent = function () {
    var self = this, cfg = this.cfg;
    this.consented = true;
    document.body.classList.add('gm-consented');
    this.addVectorLayer();
    // the data file (markers, the risk card) after the map's first tiles: on a slow network
    // the drawing comes first
    var painted = !this.vt ? Promise.resolve() : new Promise(function (done) {
      self.vt.once('load', done);
      window.setTimeout(done, 2500);
    });
    var load = cfg.dataUrl ? painted.then(function () {
      return fetch(cfg.dataUrl);
    }).then(function (r) {
      if (!r.ok) { throw new Error('HTTP ' + r.status); }
      return r.json();
    }) : Promise.resolve({layers: {}});
    return load.then(function (data) {
      self.data = data;
      self.order.forEach(function (lay) { lay.setData((data.layers || {})[lay.id] || []); });
    }, function () {
      self.data = {layers: {}};
      self.setNotice('map_load_error', {layer: self.lab(cfg.page.title)});
    }).then(function () {
      self.emit('data', self.data);
      self.emit('consent');
      G.ready = true;
      document.body.classList.add('gm-ready');
      self.updateStatus();
      self.becameReady();
      self.showAt();
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

  // ---- the vector tiles: one protomaps-leaflet layer draws every tiled layer of the page
  App.prototype.addVectorLayer = function () {
    var self = this, tc = this.cfg.tiles;
    if (!tc || !window.protomapsL || this.vt) { return; }
    var vt = this.vt = protomapsL.leafletLayer({
      url: tc.url, maxDataZoom: tc.maxDataZoom, paintRules: this.paintRules(),
      labelRules: this.labelRules(), attribution: '', zIndex: 5, tileDelay: 0,
      maxZoom: this.map.getMaxZoom()
    });
    vt.on('loading', function () { self.vtLoading = true; self.updateStatus(); });
    vt.on('load', function () {
      self.vtLoading = false;
      self.stats.drawn = performance.now();
      self.map.getContainer().dataset.drawnZoom = String(self.map.getZoom());
      self.updateStatus();
    });
    vt.on('tileload', function () {
      self.stats.tiles++;
      if (self.stats.firstPaint === null) {
        self.stats.firstPaint = performance.now();
        document.body.classList.add('gm-painted');
      }
    });
    vt.addTo(this.map);
  };
  App.prototype.tiled = function () {
    return this.order.filter(function (l) { return l.conf.source === 'tiles'; });
  };
  App.prototype.paintRules = function () {
    var rules = [];
    this.tiled().forEach(function (lay) { rules = rules.concat(lay.paintRules()); });
    return rules;
  };
  App.prototype.labelRules = function () {
    var rules = [];
    this.tiled().slice().reverse().forEach(function (lay) { rules = rules.concat(lay.labelRules()); });
    return rules;
  };
  /** Ids of a layer's features in the tiles drawn at the current zoom, when the layer is on
   * (what the page shows; tests and the benchmark read it). */
  App.prototype.drawnIds = function (layerId) {
    var lay = this.layers[layerId], out = new Set();
    if (!this.vt || !lay || !lay.visible()) { return []; }
    var dz = Math.max(0, Math.min(Math.round(this.map.getZoom()) - 1, this.cfg.tiles.maxDataZoom));
    var vb = this.map.getPixelBounds(), z = this.map.getZoom(), scale = Math.pow(2, dz + 1 - z);
    this.vt.views.forEach(function (view) {
      view.tileCache.cache.forEach(function (entry, key) {
        var k = key.split(':').map(Number);  // x:y:z
        if (k[2] !== dz) { return; }
        var x0 = k[0] * 512 / scale, y0 = k[1] * 512 / scale, size = 512 / scale;
        if (x0 > vb.max.x || y0 > vb.max.y || x0 + size < vb.min.x || y0 + size < vb.min.y) { return; }
        (entry.data.get(layerId) || []).forEach(function (f) {
          out.add(f.props.fid !== undefined ? f.props.fid : JSON.stringify(f.props));
        });
      });
    });
    return Array.from(out);
  };
  /** Styles, visibility or language changed: draw the tiles again (no new request). */
  App.prototype.repaint = function () {
    if (!this.vt) { return; }
    this.vt.paintRules = this.paintRules();
    this.vt.labelRules = this.labelRules();
    this.vt.clearLayout();
    this.vt.rerenderTiles();
  };

  // ---- header, legend dialog, notices
  App.prototype.buildChrome = function () {
    var self = this;
    this.wireLangSelect(document.getElementById('gm-lang'));
    this.buildSearch();
    document.getElementById('gm-legend-btn').addEventListener('click', function () {
      self.toggleLegend();
    });
    document.getElementById('gm-legend-close').addEventListener('click', function () {
      self.toggleLegend(false);
    });
    document.getElementById('gm-locate').addEventListener('click', function () { self.locate(); });
    trapFocus(document.getElementById('gm-legend'), function () { self.toggleLegend(false); });
    var attr = this.map.attributionControl && this.map.attributionControl.getContainer();
    if (attr) {
      // phones: folded to two lines, a tap unfolds them; every source is also in the legend
      // dialog (keyboard and screen readers read it there: the control holds links)
      attr.classList.add('gm-clamp');
      attr.addEventListener('click', function (e) {
        if (e.target.tagName !== 'A') { attr.classList.toggle('gm-open'); }
      });
      L.DomEvent.disableClickPropagation(attr);
    }
    var box = this.map.getContainer();
    box.setAttribute('aria-describedby', 'gm-kbd-hint');
    var hint = document.createElement('p');
    hint.id = 'gm-kbd-hint';
    hint.className = 'gm-visually-hidden';
    box.parentNode.insertBefore(hint, box.nextSibling);
    // the cross at the centre shows for keyboard users only (Leaflet focuses the map on a click)
    document.addEventListener('keydown', function (e) {
      if (e.key === 'Tab' || e.key.indexOf('Arrow') === 0) { document.body.classList.add('gm-kbd'); }
    }, true);
    document.addEventListener('pointerdown', function () {
      document.body.classList.remove('gm-kbd');
    }, true);
    box.addEventListener('keydown', function (e) {
      if (e.target !== box || e.key !== 'Enter') { return; }
      e.preventDefault();
      self.tap(self.map.getCenter(), true);
    });
    if (window.ResizeObserver) {
      var map = this.map;
      new ResizeObserver(function () { map.invalidateSize({pan: false}); }).observe(box);
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

  // ---- the language switch (a select: three languages, each named in itself)
  App.prototype.langSelect = function (id) {
    var self = this;
    return '<select id="' + id + '" class="gm-lang">' + (this.cfg.langs || []).map(function (l) {
      return '<option value="' + esc(l.code) + '" lang="' + esc(l.html) + '"' +
        (l.code === self.lang ? ' selected' : '') + '>' + esc(l.name) + '</option>';
    }).join('') + '</select>';
  };
  App.prototype.wireLangSelect = function (sel) {
    var self = this;
    if (!sel) { return; }
    sel.value = this.lang;
    sel.addEventListener('change', function () { self.setLang(sel.value); });
  };

  App.prototype.setLang = function (l, first) {
    this.lang = LANGS.indexOf(l) >= 0 ? l : 'ja';
    if (!first && window.GisLang) {
      window.GisLang.set(this.lang);  // data-lang, lang, remembered (the server pages too)
    } else if (!first) {
      try { window.localStorage.setItem(LS_LANG, this.lang); } catch (e) { /* not remembered */ }
    }
    document.documentElement.lang = this.htmlLang();
    document.documentElement.setAttribute('data-lang', this.lang);
    document.title = this.lab(this.cfg.page.title);
    var self = this;
    document.querySelectorAll('select.gm-lang').forEach(function (sel) {
      if (sel.value !== self.lang) { sel.value = self.lang; }
    });
    this.renderOaza();
    if (this.searchBox) {
      this.searchBox.input.setAttribute('placeholder', this.t('search_placeholder'));
      if (this.searchBox.hits.length) { this.searchBox.update(); }
    }
    this.map.getContainer().setAttribute('aria-label', this.lab(this.cfg.page.title));
    var hint = document.getElementById('gm-kbd-hint');
    if (hint) { hint.textContent = this.t('map_pick_kbd'); }
    this.renderLegend();
    this.updateStatus();
    this.renderSheetChrome();
    if (this.picks) { this.renderPicks(); }
    if (this.noticeState) { this.setNotice(this.noticeState.key, this.noticeState.vars); }
    if (document.getElementById('gm-tiles-notice')) { this.tilesFailed(); }
    if (!first) { this.repaint(); }
    this.emit('lang', this.lang);
  };

  /** The parcel page's 大字 list in the page language: romanised (English) or with its
   * reading (やさしい日本語) where the config gives them; the value stays the ledger's name. */
  App.prototype.renderOaza = function () {
    var sel = document.getElementById('pp-oaza'), pc = this.cfg.parcel, self = this;
    if (!sel || !pc) { return; }
    var names = pc.oazaNames || {};
    Array.prototype.forEach.call(sel.options, function (o) {
      var n = names[o.value], text = o.value;
      if (n && self.lang === 'en' && n.en) { text = n.en + ' (' + o.value + ')'; }
      else if (n && self.lang === EASY && n.r) { text = o.value + '（' + n.r + '）'; }
      if (o.textContent !== text) { o.textContent = text; }
    });
  };

  // ---- the search box (search.js; the index loads on the first focus or keystroke)
  App.prototype.buildSearch = function () {
    var self = this, form = document.getElementById('gm-search'), sc = this.cfg.search;
    if (!form) { return; }
    if (!sc || !window.GisSearch) { form.hidden = true; return; }
    this.searchBox = new window.GisSearch.Box(form, {
      url: sc.url, limit: 8,
      t: function (key, vars) { return self.t(key, vars); },
      lang: function () { return self.lang; },
      onPick: function (hit) {
        Promise.resolve(self.goToHit(hit)).then(function () {
          // a phone's keyboard folds away; the details took the focus, else the map has it
          var input = self.searchBox.input;
          if (document.activeElement === input) {
            self.map.getContainer().focus({preventScroll: true});
          }
        });
      }
    });
    this.searchBox.input.setAttribute('placeholder', this.t('search_placeholder'));
  };
  /** A hit on this page is shown here; one on another page opens that page at the hit, but
   * on a page with the risk card, which answers for any place of the city: a resident who
   * types an address or a 地番 on the hazard map wants its risk there, not another map. */
  App.prototype.goToHit = function (hit) {
    var self = this;
    if (this.layers[hit.layer]) { return this.showHit(hit); }
    if (this.cfg.hazard) {
      var ll = L.latLng(hit.lat, hit.lon);
      return this.showHit({lat: hit.lat, lon: hit.lon, kind: hit.kind, label: hit.label,
        layer: null, fid: null}).then(function () {
        self.emit('mapClick', {latlng: ll});
        return null;
      });
    }
    return window.GisSearch.load(this.cfg.search.url).then(function (idx) {
      var page = (idx.pages || {})[hit.layer];
      if (!page) { return self.showHit(hit); }  // on no page: at least the place
      window.location.href = self.hitUrl(page, hit);
      return null;
    });
  };
  App.prototype.hitUrl = function (page, hit) {
    var q = 'at=' + hit.lat + ',' + hit.lon + '&z=' + (hit.kind === 'oaza' ? OAZA_ZOOM : HIT_ZOOM);
    if (hit.layer) { q += '&layer=' + encodeURIComponent(hit.layer); }
    if (hit.fid !== null && hit.fid !== undefined) { q += '&fid=' + encodeURIComponent(hit.fid); }
    return page + '?' + q + '&label=' + encodeURIComponent(hit.label) + '&lang=' +
      encodeURIComponent(this.lang);
  };
  /** Go to a hit ({lat, lon, layer, fid, kind, z}) and select its feature: from the tiles or
   * the markers (works offline), else from the API. Sets data-hit on the map when done. */
  App.prototype.showHit = function (hit) {
    var self = this, map = this.map, lay = this.layers[hit.layer], box = map.getContainer();
    var ll = L.latLng(hit.lat, hit.lon), hasFid = hit.fid !== null && hit.fid !== undefined;
    var z = hit.z || (hit.kind === 'oaza' ? OAZA_ZOOM : HIT_ZOOM);
    if (lay) {
      if (!map.hasLayer(lay.group)) { map.addLayer(lay.group); }
      z = Math.max(z, lay.conf.minZoom || 0, hasFid && lay.conf.detailZoom || 0);
    }
    z = Math.min(z, map.getMaxZoom());
    delete box.dataset.hit;
    this.picks = null;
    this.selected = null;
    this.highlight.clearLayers();
    if (hasFid && lay) { this.setSheet(true); }  // the map's final size first: centred in it
    map.setView(ll, z, {animate: false});
    if (!hasFid || !lay) {
      L.circleMarker(ll, {renderer: this.highlightRenderer, interactive: false, radius: 14,
        color: '#ff6f00', weight: 5, opacity: 0.9, fill: false}).addTo(this.highlight);
      this.renderPicks();
      box.dataset.hit = 'place';
      return Promise.resolve(null);
    }
    var fid = String(hit.fid);
    return this.findFeature(lay, fid, ll).then(function (pk) {
      if (!pk) { return self.fetchFeature(lay, fid); }
      self.select(pk, true);
      // the details change the sheet's height, hence the map's: centred again once laid out
      return new Promise(function (done) {
        window.requestAnimationFrame(function () {
          window.requestAnimationFrame(function () {
            map.invalidateSize({pan: false});
            map.setView(pk.latlng || ll, map.getZoom(), {animate: false});
            done(pk);
          });
        });
      });
    }).then(function (pk) {
      box.dataset.hit = pk ? lay.id + '/' + fid : 'none';
      return pk;
    });
  };
  /** The feature ``fid`` of ``lay`` at ``ll``: a marker of the data file, or from the view's
   * tiles once they are drawn (a few tries while they come). */
  App.prototype.findFeature = function (lay, fid, ll) {
    var self = this;
    return this.whenReady.then(function () {
      if (lay.conf.source === 'data') {
        var found = null;
        lay.features.forEach(function (rec, id) {
          if (!found && String(id) === fid) { found = rec.layer; }
        });
        return found ? {lay: lay, props: found.feature.properties || {}, id: found.feature.id,
          feature: found.feature, latlng: found.getLatLng()} : null;
      }
      return new Promise(function (done) {
        var tries = 0;
        var look = function () {
          var pk = self.featuresAt(ll).filter(function (x) {
            return x.lay === lay && !x.general && String(x.id) === fid;
          })[0];
          if (pk || ++tries > 40 || !self.vt) { done(pk || null); return; }
          var next = function () { window.clearTimeout(timer); self.vt.off('load', next); look(); };
          var timer = window.setTimeout(next, 250);
          self.vt.once('load', next);
        };
        look();
      });
    });
  };
  /** The feature from the API (items/{fid}) when the tiles do not have it. */
  App.prototype.fetchFeature = function (lay, fid) {
    var self = this;
    var url = this.cfg.api + '/collections/' + encodeURIComponent(lay.id) + '/items/' +
      encodeURIComponent(fid) + '?f=json';
    return fetch(url, {headers: {Accept: 'application/geo+json'}}).then(function (r) {
      if (!r.ok) { throw new Error('HTTP ' + r.status); }
      return r.json();
    }).then(function (f) {
      if (!f || !f.geometry) { return null; }
      var shape = L.geoJSON(f, {renderer: self.highlightRenderer, interactive: false,
        style: function () { return {color: '#ff6f00', weight: 5, opacity: 0.9, fillColor: '#ffeb3b',
          fillOpacity: 0.3}; },
        pointToLayer: function (g, ll) { return L.circleMarker(ll, {radius: 14}); }});
      self.showFeature(lay, f, shape);
      return {lay: lay, id: f.id, props: f.properties || {}};
    }).catch(function () { return null; });
  };
  /** After the data: the place ?at= names (a search hit on another page, a link), once; the
   * query is then dropped from the address (a reload keeps the view in #map=). */
  App.prototype.showAt = function () {
    var at = this.at;
    if (!at) { return; }
    this.at = null;
    if (at.label) { this.setNotice('search_shown', {label: at.label}); }
    this.showHit({lat: at.lat, lon: at.lon, layer: at.layer, fid: at.fid, z: at.z,
      kind: at.fid ? 'feature' : 'place', label: at.label});
    if (window.history && window.history.replaceState) {
      var q = new URLSearchParams(window.location.search);
      ['at', 'z', 'layer', 'fid', 'label'].forEach(function (k) { q.delete(k); });
      var rest = q.toString();
      window.history.replaceState(null, '', window.location.pathname + (rest ? '?' + rest : '') +
        window.location.hash);
    }
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
      map.setView(ll, Math.max(map.getZoom(), Math.min(17, map.getMaxZoom())));
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
  App.prototype.itemsUrl = function (layer, query) {
    return this.cfg.api + '/collections/' + encodeURIComponent(layer) + '/items?' + query;
  };

  // ---- status line (zoom hints, loading)
  App.prototype.buildStatus = function () {
    var el = document.createElement('div');
    el.className = 'gm-status';
    el.id = 'gm-status';
    el.setAttribute('role', 'status');
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
    // only the next zoom that adds layers: one short line over the map
    var next = Object.keys(below).map(Number).sort(function (a, b) { return a - b; })[0];
    if (next !== undefined) {
      var names = below[next];
      var list = names.slice(0, 2).join('・') + (names.length > 2 ? '…' : '');
      parts.push(esc(self.t('map_zoom_hint', {layers: list, z: next})));
    }
    var loading = !!this.vtLoading || (!G.ready && this.consented);
    if (loading) { parts.push(esc(this.t('map_loading'))); }
    this.statusEl.innerHTML = parts.map(function (p) { return '<div>' + p + '</div>'; }).join('');
    this.statusEl.hidden = parts.length === 0;
    this.map.getContainer().dataset.loading = loading ? '1' : '0';
  };

  // ---- values as shown in details and lists
  App.prototype.codeLabel = function (codes, v) {
    var e = codes && codes[code(v)];
    return e ? this.lab(e) : null;
  };
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
    if (f.codes) {
      var label = this.codeLabel(f.codes, v);
      return label ? '<span class="gm-v">' + esc(label) + '</span> <span class="gm-code">(' +
        esc(v) + ')</span>' : esc(v);
    }
    if (f.type === 'bool' || typeof v === 'boolean') {
      return esc(this.t(v === true || v === 1 || v === '1' ? 'map_yes' : 'map_no'));
    }
    var s = typeof v === 'number' && !Number.isInteger(v) ? String(Number(v.toFixed(2))) : String(v);
    return esc(s) + (f.unit ? ' ' + esc(f.unit) : '');
  };
  /** A feature's one-line name: the layer's label field, else its template or id. */
  App.prototype.featureName = function (lay, p) {
    var c = lay.conf, self = this;
    if (c.labels && c.labels.template) {
      return fillTemplate(this.lab(c.labels.template), function (k, label) {
        return label ? lay.labelOf(k, p[k]) : p[k];
      });
    }
    if (c.labelField && p[c.labelField] !== undefined && p[c.labelField] !== null) {
      return String(p[c.labelField]);
    }
    var first = c.fields[0];
    return first ? self.formatValue(first, p).replace(/<[^>]+>/g, '') : '';
  };

  // ---------------------------------------------------------------------------------------
  // The information sheet: a tap's list, a feature's details, the behaviours' sections
  // ---------------------------------------------------------------------------------------
  App.prototype.buildSheet = function () {
    var self = this;
    this.sheet = document.getElementById('gm-sheet');
    this.sheetBody = document.getElementById('gm-sheet-body');
    this.pickEl = document.getElementById('gm-picks');
    document.getElementById('gm-sheet-toggle').addEventListener('click', function () {
      self.setSheet(self.sheet.dataset.state !== 'open');
    });
    this.renderPicks();
  };
  App.prototype.renderSheetChrome = function () {
    var btn = document.getElementById('gm-sheet-toggle');
    if (!btn) { return; }
    var open = this.sheet.dataset.state === 'open';
    btn.setAttribute('aria-expanded', open ? 'true' : 'false');
    btn.textContent = this.t(open ? 'map_sheet_close' : 'map_sheet_open');
  };
  /** Open (or fold) the sheet; the map keeps what it showed in view above or beside it. */
  App.prototype.setSheet = function (open, keep) {
    var self = this, map = this.map;
    if (!this.sheet) { return; }
    this.sheet.dataset.state = open ? 'open' : 'min';
    this.renderSheetChrome();
    var target = keep || null;
    map.invalidateSize({pan: false});
    if (target) {
      window.requestAnimationFrame(function () {
        map.invalidateSize({pan: false});
        self.keepInView(target);
      });
    }
  };
  App.prototype.keepInView = function (target) {
    var map = this.map;
    if (target.getBounds) {
      var b = target.getBounds();
      if (!map.getBounds().contains(b)) {
        map.fitBounds(b, {maxZoom: Math.max(map.getZoom(), 17), padding: [24, 24], animate: false});
      }
    } else {
      map.panInside(target, {padding: [30, 30], animate: false});
    }
  };

  /** Features within reach of ``latlng`` (tiles and markers), top layer first. */
  App.prototype.featuresAt = function (latlng) {
    var self = this, out = [], seen = {};
    var z = this.map.getZoom();
    if (this.vt) {
      var got = this.vt.queryTileFeaturesDebug(latlng.lng, latlng.lat, REACH_PX * 2);
      var dz = Math.max(0, Math.min(Math.round(z) - 1, this.cfg.tiles.maxDataZoom));
      got.forEach(function (list) {
        list.forEach(function (pf) {
          var lay = self.layers[pf.layerName];
          if (!lay || !lay.pickable()) { return; }
          var p = pf.feature.props || {};
          var key = lay.id + '/' + (p.fid !== undefined ? p.fid : JSON.stringify(p));
          if (seen[key]) { return; }
          seen[key] = true;
          out.push({lay: lay, props: p, id: p.fid, general: p.fid === undefined,
            geom: pf.feature.geom, geomType: pf.feature.geomType,
            tile: {z: dz, x: Math.floor((latlng.lng + 180) / 360 * Math.pow(2, dz)),
              y: self.tileY(latlng.lat, dz)}});
        });
      });
    }
    var pt = this.map.latLngToContainerPoint(latlng);
    this.order.forEach(function (lay) {
      if (lay.conf.source !== 'data' || !lay.visible()) { return; }
      lay.features.forEach(function (rec) {
        var l = rec.layer;
        if (!l.getLatLng) { return; }
        if (self.map.latLngToContainerPoint(l.getLatLng()).distanceTo(pt) > REACH_PX * 1.5) { return; }
        out.push({lay: lay, props: l.feature.properties || {}, id: l.feature.id, feature: l.feature,
          latlng: l.getLatLng()});
      });
    });
    return out.sort(function (a, b) { return b.lay.index - a.lay.index; });
  };
  App.prototype.tileY = function (lat, z) {
    var r = lat * Math.PI / 180;
    return Math.floor((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2 * Math.pow(2, z));
  };
  /** Lat/lng rings of a picked tile feature (for the highlight). */
  App.prototype.pickLatLngs = function (pick) {
    var map = this.map, t = pick.tile, size = 512, z1 = t.z + 1;
    return pick.geom.map(function (ring) {
      return ring.map(function (p) {
        return map.unproject([t.x * size + p.x, t.y * size + p.y], z1);
      });
    });
  };

  /** A tap (or Enter at the centre): list what is within reach, or show the one thing. */
  App.prototype.tap = function (latlng, byKeyboard, again) {
    if (!this.consented) { return; }
    var self = this;
    if (!again) {
      this.stats.picks++;
      this.emit('mapClick', {latlng: latlng});
    }
    if (this.vt && this.vtLoading && !again) {  // the view's tiles are still coming: list then
      var done = false;
      var go = function () { if (!done) { done = true; self.tap(latlng, byKeyboard, true); } };
      this.vt.once('load', go);
      window.setTimeout(go, 4000);
      return;
    }
    var picks = this.featuresAt(latlng);
    if (this.cfg.hazard && !picks.length) { return; }  // the risk card answers this tap
    this.picks = {latlng: latlng, list: picks};
    this.selected = null;
    if (picks.length === 1 && !picks[0].general) {
      this.select(picks[0], byKeyboard);
      return;
    }
    this.renderPicks();
    this.highlightPicks(picks);
    this.setSheet(true, latlng);
    this.showPicks();
    if (byKeyboard) {
      window.requestAnimationFrame(function () {
        var first = self.pickEl.querySelector('.gm-pick button, .gm-pick-zoom');
        (first || self.pickEl).focus();
      });
    }
  };
  /** Scroll the sheet to the list or detail of the last tap (a pinned item may be above it). */
  App.prototype.showPicks = function () {
    var body = this.sheetBody, el = this.pickEl;
    if (body && el) { body.scrollTop = Math.max(0, el.offsetTop - body.offsetTop - 4); }
  };
  App.prototype.highlightPicks = function (picks) {
    var self = this;
    this.highlight.clearLayers();
    picks.forEach(function (pk) { self.drawPick(pk, false); });
  };
  App.prototype.drawPick = function (pk, strong) {
    var style = {renderer: this.highlightRenderer, interactive: false, color: strong ? '#ff6f00' :
      '#ffb300', weight: strong ? 7 : 5, opacity: strong ? 0.9 : 0.6, fill: false};
    var layer = null;
    if (pk.latlng) {
      layer = L.circleMarker(pk.latlng, L.extend({radius: 16}, style));
    } else if (pk.geom) {
      var rings = this.pickLatLngs(pk);
      if (pk.geomType === 1) {
        layer = L.layerGroup(rings.map(function (r) {
          return L.circleMarker(r[0], L.extend({radius: 12}, style));
        }));
      } else if (pk.geomType === 3) {
        layer = L.polygon(rings, L.extend({}, style, {fill: strong, fillColor: '#ffeb3b',
          fillOpacity: 0.3}));
      } else {
        layer = L.polyline(rings, style);
      }
    }
    if (layer) { layer.addTo(this.highlight); }
    return layer;
  };

  App.prototype.renderPicks = function () {
    var self = this, el = this.pickEl;
    if (!el) { return; }
    if (this.selected) { this.renderDetail(this.selected); return; }
    if (!this.picks) {
      el.innerHTML = '<p class="gm-hint">' + esc(this.t('map_pick_hint')) + '</p>';
      return;
    }
    var list = this.picks.list;
    if (!list.length) {
      el.innerHTML = '<p class="gm-hint">' + esc(this.t('map_pick_none')) + '</p>';
      return;
    }
    var h = '<h3 class="gm-pick-title" id="gm-pick-title" tabindex="-1">' +
      esc(this.t('map_pick_title', {n: list.length})) + '</h3><ul class="gm-pick-list" ' +
      'aria-labelledby="gm-pick-title">';
    list.forEach(function (pk, i) {
      var c = pk.lay.conf, sw = pk.lay.swatch(pk.lay.colorOf(pk.props));
      if (pk.general) {
        h += '<li class="gm-pick gm-pick-general" data-layer="' + esc(c.id) + '">' + sw +
          '<span>' + esc(self.t('map_pick_zoom', {layer: self.lab(c.title)})) + '</span>' +
          '<button type="button" class="gm-btn gm-pick-zoom" data-i="' + i + '">' +
          esc(self.t('map_pick_zoom_go')) + '</button></li>';
        return;
      }
      h += '<li class="gm-pick" data-layer="' + esc(c.id) + '" data-id="' + esc(pk.id) + '">' +
        '<button type="button" class="gm-pick-btn" data-i="' + i + '">' + sw +
        '<span class="gm-pick-layer">' + esc(self.lab(c.title)) + '</span> <span class="gm-pick-name">' +
        esc(self.featureName(pk.lay, pk.props)) + '</span></button></li>';
    });
    el.innerHTML = h + '</ul>';
    el.querySelectorAll('.gm-pick-btn').forEach(function (b) {
      var pk = list[Number(b.dataset.i)];
      b.addEventListener('click', function () { self.select(pk, true); });
      b.addEventListener('focus', function () {
        self.highlightPicks(list);
        self.drawPick(pk, true);
      });
    });
    el.querySelectorAll('.gm-pick-zoom').forEach(function (b) {
      b.addEventListener('click', function () {
        self.map.setView(self.picks.latlng, Math.max(self.map.getZoom() + 2,
          self.layers[list[Number(b.dataset.i)].lay.id].conf.detailZoom));
      });
    });
  };

  /** Show one feature's details in the sheet (from the tile, a marker or the API). */
  App.prototype.select = function (pk, focus) {
    this.selected = pk;
    this.highlight.clearLayers();
    var shape = this.drawPick(pk, true);
    this.renderDetail(pk);
    this.setSheet(true, shape && shape.getBounds ? shape : (pk.latlng || (this.picks && this.picks.latlng)));
    this.showPicks();
    var el = this.pickEl;
    if (focus) {
      window.requestAnimationFrame(function () {
        var h = el.querySelector('.gm-detail h3');
        if (h) { h.focus({preventScroll: true}); }
      });
    }
    this.emit('selected', pk);
  };
  App.prototype.detailHtml = function (lay, p, id) {
    var self = this, c = lay.conf;
    var rows = c.fields.map(function (f) {
      return '<tr data-field="' + esc(f.name) + '"><th scope="row">' + esc(self.lab(f.title)) +
        '</th><td>' + self.formatValue(f, p) + '</td></tr>';
    }).join('');
    var extra = '';
    this.behaviours.forEach(function (b) {
      if (b.popupExtra) { extra += b.popupExtra(lay, {id: id, properties: p}) || ''; }
    });
    return '<div class="gm-detail gm-popup" data-layer="' + esc(c.id) + '" data-id="' + esc(id) +
      '" lang="' + this.htmlLang() + '"><h3 tabindex="-1">' + esc(this.lab(c.title)) +
      ' <span class="gm-detail-name">' + esc(this.featureName(lay, p)) + '</span></h3>' + extra +
      (rows ? '<table>' + rows + '</table>' : '') + '</div>';
  };
  App.prototype.renderDetail = function (pk) {
    var self = this, el = this.pickEl, back = '';
    if (this.picks && this.picks.list.length > 1) {
      back = '<button type="button" class="gm-btn gm-back" id="gm-back">' +
        esc(this.t('map_pick_back')) + '</button>';
    }
    var html = pk.lay.conf.shelter ? this.emit('detailHtml', pk) : null;
    el.innerHTML = back + (html || this.detailHtml(pk.lay, pk.props, pk.id));
    var b = el.querySelector('#gm-back');
    if (b) {
      b.addEventListener('click', function () {
        var id = pk.id;
        self.selected = null;
        self.renderPicks();
        self.highlightPicks(self.picks.list);
        var again = el.querySelector('.gm-pick[data-id="' + CSS.escape(String(id)) + '"] button');
        if (again) { again.focus(); }
      });
    }
    var detail = el.querySelector('.gm-detail');
    if (detail) { this.emit('popupOpen', detail, pk.lay, {id: pk.id, properties: pk.props}); }
  };
  /** Show a feature found elsewhere (search, API) in the sheet, with its shape highlighted. */
  App.prototype.showFeature = function (lay, feature, shape) {
    this.picks = null;
    var pk = {lay: lay, props: feature.properties || {}, id: feature.id, feature: feature};
    this.selected = pk;
    this.highlight.clearLayers();
    if (shape) { shape.addTo(this.highlight); }
    this.renderDetail(pk);
    this.setSheet(true, shape);
    this.emit('selected', pk);
  };
  App.prototype.closePopup = function () {  // compatibility with behaviours
    this.selected = null;
    this.renderPicks();
  };

  // ---- legend and sources
  App.prototype.legendRows = function (lay) {
    var self = this, c = lay.conf, rows = [];
    if (c.hazard) {
      var h = c.hazard;
      if (h.groupOrder.length) {
        h.groupOrder.forEach(function (g) {
          h.rankOrder.forEach(function (r) {
            var col = lay.hazardColor(r, g);
            rows.push('<li data-group="' + esc(g) + '" data-rank="' + esc(r) + '">' +
              lay.swatch(col.c, col.emph ? 'gm-emph' : '') + '<span>' +
              esc(self.lab(h.groups[g])) + ' — ' + esc(self.lab(h.ranks[r])) + '</span></li>');
          });
        });
      } else {
        h.rankOrder.forEach(function (r) {
          var col = lay.hazardColor(r, null);
          rows.push('<li data-code="' + esc(r) + '">' + lay.swatch(col.c, col.emph ? 'gm-emph' : '') +
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
          rows.push('<li data-code="' + esc(k) + '">' + lay.swatch(cb.codes[k].color) +
            '<span>' + esc(self.lab(cb.codes[k])) + (first ? '' : ' <code>' + esc(k) + '</code>') +
            '</span></li>');
        });
    } else if (c.role !== 'shelter') {
      rows.push('<li>' + lay.swatch(c.style.color) + '<span>' + esc(this.lab(c.title)) +
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
        self.repaint();
        self.renderLegend();
        var again = document.querySelector('.gm-color-by select[data-layer="' + CSS.escape(lay.id) + '"]');
        if (again) { again.focus(); }
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
  // One layer: drawn from the tiles, or from the data file (markers)
  // ---------------------------------------------------------------------------------------
  function MapLayer(app, conf, index) {
    var self = this;
    this.app = app;
    this.conf = conf;
    this.id = conf.id;
    this.index = index;
    var asOf = app.cfg.text.map_as_of;
    var date = conf.date ? {ja: fmt(asOf.ja, {date: conf.date}), en: fmt(asOf.en, {date: conf.date}),
      'ja@easy': fmt(asOf[EASY] || asOf.ja, {date: conf.date})} : app.cfg.text.map_date_unknown;
    // layers with the same source and date share one attribution (Leaflet counts them)
    this.group = L.featureGroup([], {attribution: '<span class="gm-attr">' +
      app.bi(conf.attribution) + ' (' + app.bi(date) + ')</span>'});
    this.content = L.featureGroup();
    this.features = new Map();  // data-file features: id -> {layer}
    this.raw = [];              // data-file features as they came (the risk card reads them)
    this.content.on('click', function (e) {
      var l = e.layer;
      if (!l || !l.feature) { return; }
      L.DomEvent.stop(e);
      app.picks = null;
      app.select({lay: self, props: l.feature.properties || {}, id: l.feature.id, feature: l.feature,
        latlng: l.getLatLng ? l.getLatLng() : e.latlng}, false);
    });
  }

  MapLayer.prototype.inRange = function () {
    var z = this.app.map.getZoom();
    return z >= this.conf.minZoom && z <= this.conf.maxZoom;
  };
  MapLayer.prototype.visible = function () {
    return this.app.map.hasLayer(this.group) && this.inRange();
  };
  MapLayer.prototype.pickable = function () {
    return !this.conf.hazard && this.visible();
  };
  MapLayer.prototype.updateRange = function () {
    var has = this.group.hasLayer(this.content);
    if (this.inRange() && !has) { this.group.addLayer(this.content); }
    else if (!this.inRange() && has) { this.group.removeLayer(this.content); }
  };

  // ---- style
  MapLayer.prototype.colorByOf = function (field) {
    return this.conf.colorBy.find(function (cb) { return cb.field === field; });
  };
  MapLayer.prototype.colorField = function () {
    return this.app.colorField[this.id] || (this.conf.colorBy[0] && this.conf.colorBy[0].field);
  };
  MapLayer.prototype.labelOf = function (field, v) {
    var f = this.conf.fields.find(function (x) { return x.name === field; });
    var codes = (f && f.codes) || (this.conf.codes || {})[field];
    return this.app.codeLabel(codes, v) || v;
  };
  /** A hazard zone's colour: an emphasised rank's own, else its group's or its rank's. */
  MapLayer.prototype.hazardColor = function (r, g) {
    var h = this.conf.hazard, e = h.emphasis[r];
    if (typeof e === 'string') { return {c: e, emph: true}; }
    if (e && e[g]) { return {c: e[g], emph: true}; }
    if (h.colorGroup && h.groups[g]) { return {c: h.groups[g].color, emph: false}; }
    var rk = h.ranks[r];
    return {c: rk ? rk.color : this.conf.style.color, emph: false};
  };
  MapLayer.prototype.hazardOf = function (p) {
    var h = this.conf.hazard;
    return this.hazardColor(code(p[h.rankField]), h.groupField ? code(p[h.groupField]) : null);
  };
  MapLayer.prototype.colorOf = function (p) {
    if (this.conf.hazard) { return this.hazardOf(p).c; }
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
  MapLayer.prototype.swatch = function (color, extra) {
    var st = this.conf.style, g = this.conf.geometry, style;
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

  /** protomaps-leaflet paint rules of this layer (in display zooms). */
  MapLayer.prototype.paintRules = function () {
    var self = this, c = this.conf, st = c.style, app = this.app;
    if (!app.map.hasLayer(this.group)) { return []; }
    var base = {dataLayer: c.id, minzoom: c.minZoom, maxzoom: c.maxZoom};
    var col = function (z, f) { return self.colorOf(f.props); };
    var rules = [];
    var dash = st.dash ? st.dash.split(/\s+/).map(Number) : null;
    if (c.geometry === 'line') {
      // widths are for street level: thinner as the map zooms out, or a city is one blot
      var lw = function (z, f) {
        return Math.max(0.6, self.widthOf(f.props) * Math.min(1, Math.pow(2, (z - FULL_WIDTH_ZOOM) / 2)));
      };
      rules.push(L.extend({symbolizer: new protomapsL.LineSymbolizer(dash ? {dash: dash,
        dashColor: col, dashWidth: lw, opacity: 0.95} : {color: col, width: lw, opacity: 0.95})}, base));
      if (st.arrows) {
        rules.push(L.extend({}, base, {minzoom: Math.max(c.minZoom, ARROW_ZOOM),
          symbolizer: new ArrowSymbolizer(col, 9)}));
      }
    } else if (c.geometry === 'polygon') {
      var fillCol = c.hazard ? col : function (z, f) { return st.fill || self.colorOf(f.props); };
      var emph = function (z, f) { return c.hazard ? self.hazardOf(f.props).emph : false; };
      rules.push(L.extend({symbolizer: new protomapsL.PolygonSymbolizer({fill: fillCol,
        opacity: function (z, f) { return emph(z, f) ? Math.min(1, st.fillOpacity + 0.2) : st.fillOpacity; }})},
      base));
      var outline = function (z, f) { return st.outline || self.colorOf(f.props); };
      var ow = function (z, f) { return emph(z, f) ? st.weight * 1.43 : st.weight; };
      rules.push(L.extend({symbolizer: new protomapsL.LineSymbolizer(dash ? {dash: dash,
        dashColor: outline, dashWidth: ow, opacity: 0.9} : {color: outline, width: ow, opacity: 0.9})},
      base));
    } else {
      rules.push(L.extend({symbolizer: new protomapsL.CircleSymbolizer({
        radius: st.radius, fill: function (z, f) { return st.fill || self.colorOf(f.props); },
        stroke: function (z, f) { return st.outline || (st.fill ? self.colorOf(f.props) : '#ffffff'); },
        width: Math.max(1, st.weight), opacity: 1})}, base));
    }
    return rules;
  };
  /** protomaps-leaflet label rules: the layer's template along lines, in polygons, by points. */
  MapLayer.prototype.labelRules = function () {
    var self = this, c = this.conf, app = this.app, lc = c.labels;
    if (!lc || !app.map.hasLayer(this.group)) { return []; }
    var tpl = function () {
      return lc.template ? app.lab(lc.template) :
        lc.fields.map(function (f) { return '{' + f + '}'; }).join(' ');
    };
    var text = function (p) {
      if (!lc.fields.some(function (f) { return p[f] !== null && p[f] !== undefined; })) { return ''; }
      return fillTemplate(tpl(), function (k, label) { return label ? self.labelOf(k, p[k]) : p[k]; });
    };
    var opts = {labelProps: ['_l'], font: LABEL_FONT, fill: '#1a1a1a', stroke: '#ffffff', width: 3};
    var inner, where = null;
    if (c.geometry === 'line') {
      inner = new protomapsL.LineLabelSymbolizer(L.extend({position: protomapsL.LineLabelPlacement ?
        protomapsL.LineLabelPlacement.Above : 1, offset: 2, repeatDistance: 220}, opts));
    } else if (c.geometry === 'polygon') {
      inner = new protomapsL.CenteredTextSymbolizer(opts);
      where = 'centre';
    } else {
      inner = new protomapsL.OffsetTextSymbolizer(L.extend({offsetX: c.style.radius + 3, offsetY: 4}, opts));
    }
    return [{dataLayer: c.id, minzoom: Math.max(lc.minZoom, c.minZoom), maxzoom: c.maxZoom,
      symbolizer: new TemplateLabel(inner, text, where)}];
  };

  // ---- data-file layers (markers and the risk card's features)
  MapLayer.prototype.makeLayer = function (f) {
    var st = this.conf.style, p = f.properties || {};
    var c = f.geometry.coordinates, ll = L.latLng(c[1], c[0]);
    var l = this.app.emit('pointLayer', this, f, ll) || L.circleMarker(ll, {radius: st.radius,
      color: st.outline || '#ffffff', weight: 2, fillColor: st.fill || this.colorOf(p),
      fillOpacity: 1, renderer: this.app.svg});
    l.feature = f;
    return l;
  };
  MapLayer.prototype.setData = function (features) {
    var self = this;
    this.raw = features;
    if (this.conf.source !== 'data') { return; }
    features.forEach(function (f) {
      if (!f.geometry || f.geometry.type !== 'Point') { return; }
      var l = self.makeLayer(f);
      self.features.set(f.id, {layer: l});
      self.content.addLayer(l);
    });
    this.app.map.getContainer().dataset['loaded_' + this.id] = String(this.features.size);
  };
  MapLayer.prototype.restyle = function () {
    var self = this;
    this.features.forEach(function (rec) {
      if (rec.layer.setStyle) { rec.layer.setStyle({fillColor: self.colorOf(rec.layer.feature.properties || {})}); }
    });
  };

  // ---------------------------------------------------------------------------------------
  G.esc = esc;
  G.fmt = fmt;
  G.fillTemplate = fillTemplate;
  G.trapFocus = trapFocus;
  G.start = function () {
    var cfg = JSON.parse(document.getElementById('gm-config').textContent);
    var app = new App(cfg);
    G.app = app;
    app.start();
    return app;
  };
  // deferred scripts (this one and the behaviours after it) all run before DOMContentLoaded,
  // whatever order the network delivers them in: start then, once (readyState is already
  // 'interactive' while deferred scripts run, so it cannot tell)
  var started = false;
  var once = function () { if (!started) { started = true; G.start(); } };
  if (document.readyState === 'complete') {
    window.setTimeout(once, 0);
  } else {
    document.addEventListener('DOMContentLoaded', once);
    window.addEventListener('load', once);
  }
})();
