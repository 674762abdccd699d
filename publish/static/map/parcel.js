/*
 * Parcel behaviour of the map pages (on when the page has a layer with role "parcel"):
 * 大字 + 地番 search over the OGC API; the parcel found (or chosen on the map) is pinned at the
 * top of the information sheet with the pipe-sheet PDF buttons (OGC API - Processes, POST) and a
 * table of the pipes within reach of it (the page's pipe layers, from the API, measured here).
 *
 * The sheet is never covered by anything and the pinned parcel stays at its top while taps list
 * other features below it, so the PDF buttons are where a phone user expects them, also after a
 * pipe sheet's QR code (#oaza=..&chiban=..) opened the page.
 *
 * The 地番 normaliser is a port of etl.normalize's nfkc/chiban (the tests compare the two), so
 * "１２３－４", "123番4" and "123の4" find the same lot as the ETL stored ("123-4").
 */
(function () {
  'use strict';

  var G = window.GisMap;
  var esc = G.esc;

  var HYPHENS = /[\u02d7\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\u2500\u2501\ufe58\ufe63\uff0d]/g;
  var CHOON = /(?<=[0-9A-Za-z])\u30fc(?=[0-9A-Za-z])/g;
  var INVISIBLE = /[\u200b\u200c\u200d\u2060\ufeff]/g;
  var CHIBAN_SPECIAL = /^(?:地区外|区域外|別図|不明|不詳|未定|番外|無番|無地番)/;
  var CHIBAN_SEP = /(?<=\d)(?:番地の?|番の?|の|ノ|之|-)(?=\d)/g;
  var CHIBAN_TAIL = /(?<=\d)(?:番地|番)$/;
  var CHIBAN_RE = /^([\u3041-\u3096\u30a1-\u30fa\u4e00-\u9fff々〆]{0,10})(\d+(?:-\d+)*)$/;
  var API_DOWN = [0, 502, 503, 504];  // no API behind the front (docs/nginx/api-down.json)

  /** The JSON of an API answer; a failure carries its HTTP status (0: no answer at all). */
  function apiJson(r) {
    if (!r.ok) {
      var e = new Error('HTTP ' + r.status);
      e.status = r.status;
      throw e;
    }
    return r.json();
  }

  /** "The API is down (the map keeps working)" when it is, else ``fallback``. */
  function apiErrorKey(e, fallback) {
    var st = e && e.status !== undefined ? e.status : (e instanceof TypeError ? 0 : -1);
    return API_DOWN.indexOf(st) >= 0 ? 'map_api_unavailable' : fallback;
  }

  var MEASURE_ZOOM = 22;  // pixels of this zoom measure distances (Web Mercator, scaled to metres)

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

  /** Rings or lines of a GeoJSON geometry as arrays of [lon, lat]. */
  function parts(g) {
    if (!g) { return []; }
    switch (g.type) {
      case 'LineString': return [g.coordinates];
      case 'MultiLineString': case 'Polygon': return g.coordinates;
      case 'MultiPolygon': return [].concat.apply([], g.coordinates);
      case 'Point': return [[g.coordinates]];
      default: return [];
    }
  }

  function Parcel(app) {
    var self = this;
    this.app = app;
    this.cfg = app.cfg.parcel;
    this.layer = app.layers[this.cfg.layer];
    this.pinned = null;
    this.msg = null;
    this.shapes = L.layerGroup().addTo(app.map);
    this.pipeShape = L.layerGroup().addTo(app.map);
    var section = document.createElement('section');
    section.id = 'pp-result';
    section.className = 'pp-result';
    section.setAttribute('aria-live', 'polite');
    section.hidden = true;
    var body = document.getElementById('gm-sheet-body');
    body.insertBefore(section, body.firstChild);
    this.section = section;
    var form = document.getElementById('pp-search-form');
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      self.search(document.getElementById('pp-oaza').value,
        document.getElementById('pp-chiban').value, false);
    });
    this.lang();
  }

  /** Texts of the search box in the page's language. */
  Parcel.prototype.lang = function () {
    var input = document.getElementById('pp-chiban');
    if (input) { input.placeholder = this.app.t('map_search_placeholder'); }
    if (this.msg) { this.say(this.msg.key, this.msg.vars, this.msg.error); }
    if (this.pinned) { this.render(); }
  };

  Parcel.prototype.say = function (key, vars, isError) {
    this.msg = key ? {key: key, vars: vars, error: isError} : null;
    var el = document.getElementById('pp-search-msg');
    if (!el) { return; }
    var s = key ? esc(this.app.t(key, vars)) : '';
    el.innerHTML = isError ? '<span class="gm-error">' + s + '</span>' : s;
  };

  Parcel.prototype.search = function (oaza, chibanInput, fromHash) {
    var self = this, app = this.app, chiban = normalizeChiban(chibanInput), oz = nfkc(oaza);
    if (!oz || !chiban) { this.say('map_search_empty', null, true); return Promise.resolve(null); }
    if (fromHash) {
      document.getElementById('pp-oaza').value = oz;
      document.getElementById('pp-chiban').value = chiban;
    }
    var q = 'f=json&limit=20&' + encodeURIComponent(this.cfg.oazaField) + '=' +
      encodeURIComponent(oz) + '&' + encodeURIComponent(this.cfg.chibanField) + '=' +
      encodeURIComponent(chiban);
    if (this.layer && this.layer.conf.properties) {
      q += '&properties=' + encodeURIComponent(this.layer.conf.properties.join(','));
    }
    this.say('map_loading');
    return fetch(app.itemsUrl(this.cfg.layer, q), {headers: {Accept: 'application/geo+json'}})
      .then(apiJson)
      .then(function (fc) {
        var feats = (fc.features || []).filter(function (f) { return f.geometry; });
        if (!feats.length) {
          self.say('map_search_none', {oaza: oz, chiban: chiban}, true);
          return null;
        }
        self.pin(feats, oz, chiban, !fromHash);
        self.say('map_search_found', {oaza: oz, chiban: chiban});
        return feats;
      })
      .catch(function (e) { self.say(apiErrorKey(e, 'map_search_error'), null, true); return null; });
  };

  /** Pin a parcel at the top of the sheet: its shape, PDF buttons and pipes. */
  Parcel.prototype.pin = function (feats, oaza, chiban, focus) {
    var app = this.app;
    this.shapes.clearLayers();
    var gj = L.geoJSON({type: 'FeatureCollection', features: feats}, {
      renderer: app.highlightRenderer, interactive: false,
      style: function () {
        return {color: '#ff6f00', weight: 4, opacity: 1, fillColor: '#ffeb3b', fillOpacity: 0.35};
      }
    });
    gj.addTo(this.shapes);
    this.pinned = {feats: feats, oaza: oaza, chiban: chiban, shape: gj, pipes: null};
    app.picks = null;
    app.selected = null;
    app.highlight.clearLayers();
    app.renderPicks();
    this.render();
    var b = gj.getBounds();
    app.map.fitBounds(b, {maxZoom: 19, padding: [24, 24], animate: false});
    app.setSheet(true, gj);
    document.getElementById('gm-sheet-body').scrollTop = 0;
    app.map.getContainer().dataset.selected = feats.map(function (f) { return f.id; }).join(',');
    app.writeHash();
    this.loadPipes();
    if (focus) {
      var h = this.section.querySelector('h3');
      if (h) { h.focus({preventScroll: true}); }
    }
  };
  Parcel.prototype.unpin = function () {
    this.pinned = null;
    this.shapes.clearLayers();
    this.pipeShape.clearLayers();
    this.section.hidden = true;
    this.section.innerHTML = '';
    delete this.app.map.getContainer().dataset.selected;
    this.app.writeHash();
  };

  Parcel.prototype.render = function () {
    var self = this, app = this.app, pn = this.pinned, f = pn.feats[0];
    var lay = this.layer, p = f.properties || {};
    var rows = lay ? lay.conf.fields.map(function (fc) {
      return '<tr data-field="' + esc(fc.name) + '"><th scope="row">' + esc(app.lab(fc.title)) +
        '</th><td>' + app.formatValue(fc, p) + '</td></tr>';
    }).join('') : '';
    this.section.hidden = false;
    this.section.innerHTML =
      '<div class="gm-detail gm-popup pp-pinned" data-layer="' + esc(this.cfg.layer) + '" data-id="' +
      esc(f.id) + '" lang="' + app.htmlLang() + '"><div class="pp-head"><h3 tabindex="-1">' +
      esc(app.lab(lay ? lay.conf.title : {ja: '', en: ''})) + ' <span class="gm-detail-name">' +
      esc(pn.oaza) + ' ' + esc(pn.chiban) + '</span></h3><button type="button" class="gm-btn ' +
      'pp-unpin" aria-label="' + esc(app.t('map_close')) + '">×</button></div>' +
      this.sheetButtons(pn.oaza, pn.chiban) + (rows ? '<table>' + rows + '</table>' : '') +
      '<div class="pp-pipes" id="pp-pipes"></div></div>';
    this.section.querySelector('.pp-unpin').addEventListener('click', function () { self.unpin(); });
    this.wireSheet(this.section);
    this.renderPipes();
  };

  // ---- pipe sheets
  Parcel.prototype.sheetButtons = function (oaza, chiban) {
    var app = this.app, sh = app.cfg.sheet;
    if (!sh || !oaza || !chiban) { return ''; }
    var out = '<div class="pp-sheet"><p class="pp-sheet-title">' + esc(app.t('map_sheet')) +
      '</p><div class="pp-sheet-btns">';
    sh.papers.forEach(function (paper) {
      sh.scales.forEach(function (scale) {
        out += '<button type="button" class="gm-btn pp-sheet-btn" data-oaza="' + esc(oaza) +
          '" data-chiban="' + esc(chiban) + '" data-scale="' + scale + '" data-paper="' + paper +
          '">1/' + scale + ' ' + paper + '</button>';
      });
    });
    return out + '</div><p class="pp-sheet-status" role="status"></p></div>';
  };
  Parcel.prototype.wireSheet = function (el) {
    var self = this;
    el.querySelectorAll('.pp-sheet-btn').forEach(function (btn) {
      btn.addEventListener('click', function () {
        self.requestSheet(btn, el.querySelector('.pp-sheet-status'));
      });
    });
  };
  /** OGC API - Processes execution (POST only in pygeoapi 0.21); the PDF is downloaded. */
  Parcel.prototype.requestSheet = function (btn, status) {
    var app = this.app, d = btn.dataset;
    var body = {inputs: {oaza: d.oaza, chiban: d.chiban, scale: Number(d.scale), paper: d.paper}};
    status.textContent = app.t('map_sheet_making');
    btn.disabled = true;
    fetch(app.cfg.sheet.url, {method: 'POST', headers: {'Content-Type': 'application/json',
      Accept: 'application/pdf'}, body: JSON.stringify(body)})
      .then(function (r) {
        var ct = r.headers.get('Content-Type') || '';
        if (r.ok && ct.indexOf('pdf') >= 0) {
          return r.blob().then(function (blob) {
            var url = URL.createObjectURL(blob);
            var name = 'pipe-sheet_' + d.oaza + '_' + d.chiban + '_1-' + d.scale + '_' + d.paper + '.pdf';
            status.innerHTML = esc(app.t('map_sheet_done')) + ' <a class="pp-sheet-link" href="' +
              url + '" target="_blank" rel="noopener" download="' + esc(name) + '">' + esc(name) + '</a>';
            status.querySelector('a').click();
          });
        }
        if (API_DOWN.indexOf(r.status) >= 0) {
          status.innerHTML = '<span class="gm-error">' + esc(app.t('map_api_unavailable')) + '</span>';
          return null;
        }
        if (r.status === 429) {
          var s = parseInt(r.headers.get('Retry-After') || '5', 10) || 5;
          status.innerHTML = '<span class="gm-error">' + esc(app.t('map_sheet_busy', {s: s})) + '</span>';
          return null;
        }
        return r.text().then(function (t) {
          var msg = '';
          try { msg = (JSON.parse(t).description || '').replace(/^Error executing process: /, ''); } catch (e) { msg = ''; }
          status.innerHTML = '<span class="gm-error">' + esc(app.t('map_sheet_failed')) +
            (msg ? ': ' + esc(msg) : '') + '</span>';
        });
      }, function () {  // no answer at all: the API (or the network) is down
        status.innerHTML = '<span class="gm-error">' + esc(app.t('map_api_unavailable')) + '</span>';
      })
      .then(function () { btn.disabled = false; });
  };

  // ---- the pipes within reach of the pinned parcel (a table; rows highlight on the map)
  Parcel.prototype.pipeLayers = function () {
    var app = this.app;
    return (this.cfg.pipes || []).map(function (id) { return app.layers[id]; })
      .filter(function (l) { return l; });
  };
  Parcel.prototype.loadPipes = function () {
    var self = this, app = this.app, pn = this.pinned, reach = this.cfg.reachM;
    if (!pn || !this.pipeLayers().length) { return; }
    var b = pn.shape.getBounds(), c = b.getCenter();
    var dLat = reach / 111320, dLon = reach / (111320 * Math.cos(c.lat * Math.PI / 180));
    var bbox = [b.getWest() - dLon, b.getSouth() - dLat, b.getEast() + dLon, b.getNorth() + dLat]
      .map(function (v) { return v.toFixed(7); }).join(',');
    pn.pipes = 'loading';
    this.renderPipes();
    var jobs = this.pipeLayers().map(function (lay) {
      var q = 'f=json&limit=' + app.cfg.maxItems + '&bbox=' + bbox +
        (lay.conf.properties ? '&properties=' + encodeURIComponent(lay.conf.properties.join(',')) : '');
      return fetch(app.itemsUrl(lay.id, q), {headers: {Accept: 'application/geo+json'}})
        .then(apiJson)
        .then(function (fc) {
          return (fc.features || []).map(function (f) {
            return {lay: lay, f: f, d: self.distance(f.geometry, pn.feats)};
          });
        });
    });
    Promise.all(jobs).then(function (lists) {
      if (self.pinned !== pn) { return; }
      pn.pipes = [].concat.apply([], lists).filter(function (x) { return x.d <= reach; })
        .sort(function (a, b) { return a.d - b.d; });
      self.renderPipes();
    }, function (e) {
      if (self.pinned !== pn) { return; }
      pn.pipes = 'error';
      pn.pipesError = apiErrorKey(e, 'map_pipes_error');
      self.renderPipes();
    });
  };
  /** Metres between a pipe and the parcel (0 when they meet), measured in Web Mercator pixels
   * of a fine zoom (scaled by the latitude's Mercator factor) with protomaps-leaflet's geometry
   * helpers: point in polygon, point to lines. */
  Parcel.prototype.distance = function (geom, feats) {
    var map = this.app.map, z = MEASURE_ZOOM, P = protomapsL;
    var proj = function (c) { return map.project([c[1], c[0]], z); };
    var lines = parts(geom).map(function (l) { return l.map(proj); });
    var rings = [].concat.apply([], feats.map(function (f) { return parts(f.geometry); }))
      .map(function (r) { return r.map(proj); });
    if (!lines.length || !rings.length) { return Infinity; }
    var lat = L.geoJSON(feats[0]).getBounds().getCenter().lat;
    var mPerPx = 40075016.686 * Math.cos(lat * Math.PI / 180) / (256 * Math.pow(2, z));
    var best = Infinity;
    lines.forEach(function (l) {
      l.forEach(function (pt) {
        if (rings.some(function (r) { return P.isInRing(pt, r); })) { best = 0; }
        best = Math.min(best, P.pointMinDistToLines(pt, rings));
      });
    });
    rings.forEach(function (r) {
      r.forEach(function (q) { best = Math.min(best, P.pointMinDistToLines(q, lines)); });
    });
    return best * mPerPx;
  };
  Parcel.prototype.renderPipes = function () {
    var self = this, app = this.app, pn = this.pinned;
    var el = this.section.querySelector('#pp-pipes');
    if (!el || !pn || !this.pipeLayers().length) { return; }
    var reach = this.cfg.reachM;
    var title = '<h4 id="pp-pipes-title">' + esc(app.t('map_pipes_title', {m: reach})) + '</h4>';
    if (pn.pipes === 'loading' || pn.pipes === null) {
      el.innerHTML = title + '<p class="gm-small">' + esc(app.t('map_pipes_loading')) + '</p>';
      return;
    }
    if (pn.pipes === 'error') {
      el.innerHTML = title + '<p class="gm-error">' + esc(app.t(pn.pipesError || 'map_pipes_error')) + '</p>';
      return;
    }
    if (!pn.pipes.length) {
      el.innerHTML = title + '<p class="gm-small">' + esc(app.t('map_pipes_none', {m: reach})) + '</p>';
      return;
    }
    var head = ['map_pipes_kind'].map(function (k) { return esc(app.t(k)); });
    var cols = [];
    this.pipeLayers().forEach(function (lay) {
      (lay.conf.pipe.fields || []).forEach(function (name) {
        var fc = lay.conf.fields.find(function (x) { return x.name === name; });
        var key = fc ? app.lab(fc.title) : name;
        if (!cols.some(function (c) { return c.key === key; })) { cols.push({key: key}); }
      });
    });
    var h = title + '<div class="pp-pipes-scroll"><table class="pp-pipes-table" aria-labelledby=' +
      '"pp-pipes-title"><thead><tr><th scope="col">' + head[0] + '</th>' +
      cols.map(function (c) { return '<th scope="col">' + esc(c.key) + '</th>'; }).join('') +
      '<th scope="col">m</th></tr></thead><tbody>';
    pn.pipes.forEach(function (x, i) {
      var lay = x.lay, p = x.f.properties || {};
      var cells = cols.map(function (c) {
        var name = (lay.conf.pipe.fields || []).find(function (n) {
          var fc = lay.conf.fields.find(function (y) { return y.name === n; });
          return (fc ? app.lab(fc.title) : n) === c.key;
        });
        if (!name) { return '<td>—</td>'; }
        var fc = lay.conf.fields.find(function (y) { return y.name === name; }) ||
          {name: name, title: {ja: name, en: name}};
        return '<td>' + app.formatValue(fc, p) + '</td>';
      }).join('');
      h += '<tr data-layer="' + esc(lay.id) + '" data-id="' + esc(x.f.id) + '"><th scope="row">' +
        '<button type="button" class="pp-pipe-btn" data-i="' + i + '">' +
        lay.swatch(lay.colorOf(p)) + esc(app.lab(lay.conf.pipe.title)) + ' ' +
        esc(app.featureName(lay, p)) + '</button></th>' + cells + '<td>' + x.d.toFixed(1) + '</td></tr>';
    });
    el.innerHTML = h + '</tbody></table></div>';
    el.querySelectorAll('.pp-pipe-btn').forEach(function (b) {
      var x = pn.pipes[Number(b.dataset.i)];
      var show = function () {
        self.pipeShape.clearLayers();
        L.geoJSON(x.f, {renderer: app.highlightRenderer, interactive: false, style: function () {
          return {color: '#d50000', weight: 8, opacity: 0.8};
        }}).addTo(self.pipeShape);
      };
      b.addEventListener('focus', show);
      b.addEventListener('click', function () {
        show();
        app.keepInView(self.pipeShape.getLayers()[0]);
      });
    });
  };

  // ---- a parcel chosen on the map is pinned like a search result
  Parcel.prototype.selected = function (pk) {
    if (pk.lay.id !== this.cfg.layer) { return; }
    var self = this, app = this.app, p = pk.props;
    var oaza = p[this.cfg.oazaField], chiban = p[this.cfg.chibanField];
    if (!oaza || !chiban) { return; }
    var q = 'f=json&limit=5&' + encodeURIComponent(this.cfg.oazaField) + '=' +
      encodeURIComponent(oaza) + '&' + encodeURIComponent(this.cfg.chibanField) + '=' +
      encodeURIComponent(chiban);
    if (this.layer && this.layer.conf.properties) {
      q += '&properties=' + encodeURIComponent(this.layer.conf.properties.join(','));
    }
    fetch(app.itemsUrl(this.cfg.layer, q), {headers: {Accept: 'application/geo+json'}})
      .then(apiJson)
      .then(function (fc) {
        var feats = (fc.features || []).filter(function (f) { return f.geometry; });
        if (feats.length) { self.pin(feats, oaza, chiban, true); }
      })
      .catch(function (e) { self.say(apiErrorKey(e, 'map_search_error'), null, true); });
  };
  /** Parcels in a detail (when the sheet lists a parcel rather than pinning it). */
  Parcel.prototype.popupExtra = function (lay, feature) {
    if (lay.id !== this.cfg.layer) { return ''; }
    var p = feature.properties || {};
    return this.sheetButtons(p[this.cfg.oazaField], p[this.cfg.chibanField]);
  };
  Parcel.prototype.popupOpen = function (el) { this.wireSheet(el); };

  // ---- legend, hash, language
  Parcel.prototype.legendRows = function (lay) {
    if (lay.id !== this.cfg.layer) { return []; }
    return ['<li><span class="gm-swatch gm-swatch-polygon" style="background-color:#ffeb3b;' +
      'border:3px solid #ff6f00" aria-hidden="true"></span><span>' +
      esc(this.app.t('map_parcel_hit')) + '</span></li>'];
  };
  Parcel.prototype.hashParts = function () {
    return this.pinned ? {oaza: this.pinned.oaza, chiban: this.pinned.chiban} : null;
  };
  /** After consent (and the data): the parcel the URL names (a pipe sheet's QR code). */
  Parcel.prototype.consent = function () {
    var h = this.app.hash.params;
    if (h.oaza && h.chiban) { this.search(h.oaza, h.chiban, true); }
  };

  G.normalizeChiban = normalizeChiban;
  G.nfkc = nfkc;
  G.behaviours.push({
    name: 'parcel',
    applies: function (cfg) { return !!cfg.parcel; },
    create: function (app) { var b = new Parcel(app); G.parcel = b; return b; }
  });
})();
