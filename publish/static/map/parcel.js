/*
 * Parcel behaviour of the map pages (on when the page has a layer with role "parcel"):
 * 大字 + 地番 search over the OGC API, the found parcel highlighted, and (with pipe layers on
 * the page) pipe-sheet PDF buttons in the parcel's popup (OGC API - Processes, POST).
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

  function Parcel(app) {
    this.app = app;
    this.cfg = app.cfg.parcel;
    this.layer = app.layers[this.cfg.layer];
    this.selected = null;
    var hp = app.map.createPane('gm-highlight');
    hp.style.zIndex = 450;
    hp.style.pointerEvents = 'none';
    this.highlightRenderer = L.svg({pane: 'gm-highlight'});
    this.highlight = L.layerGroup().addTo(app.map);
    this.buildSearch();
  }

  Parcel.prototype.buildSearch = function () {
    var self = this, app = this.app;
    var ctl = L.control({position: 'topleft'});
    ctl.onAdd = function () {
      var d = L.DomUtil.create('div', 'pp-search leaflet-control');
      d.innerHTML = '<form id="pp-search-form" autocomplete="off">' +
        '<div class="pp-search-title" data-text="map_search_title"></div>' +
        '<label><span data-text="map_search_oaza"></span><select id="pp-oaza" name="oaza">' +
        self.cfg.oaza.map(function (o) {
          return '<option value="' + esc(o) + '">' + esc(o) + '</option>';
        }).join('') + '</select></label>' +
        '<label><span data-text="map_search_chiban"></span><input id="pp-chiban" name="chiban" ' +
        'type="text" inputmode="text"></label>' +
        '<button type="submit" id="pp-search-go" class="gm-btn gm-primary" ' +
        'data-text="map_search_go"></button>' +
        '<div id="pp-search-msg" class="pp-search-msg" aria-live="polite"></div></form>';
      L.DomEvent.disableClickPropagation(d);
      L.DomEvent.disableScrollPropagation(d);
      d.querySelector('form').addEventListener('submit', function (ev) {
        ev.preventDefault();
        self.search(d.querySelector('#pp-oaza').value, d.querySelector('#pp-chiban').value, false);
      });
      self.el = d;
      return d;
    };
    ctl.addTo(app.map);
    this.lang();
  };

  /** Texts of the search box in the page's language. */
  Parcel.prototype.lang = function () {
    var app = this.app;
    if (!this.el) { return; }
    this.el.querySelectorAll('[data-text]').forEach(function (n) {
      n.textContent = app.t(n.dataset.text);
    });
    this.el.querySelector('#pp-chiban').placeholder = app.t('map_search_placeholder');
    if (this.msg) { this.say(this.msg.key, this.msg.vars, this.msg.error); }
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
      .then(function (r) { if (!r.ok) { throw new Error('HTTP ' + r.status); } return r.json(); })
      .then(function (fc) {
        var feats = (fc.features || []).filter(function (f) { return f.geometry; });
        if (!feats.length) {
          self.say('map_search_none', {oaza: oz, chiban: chiban}, true);
          return null;
        }
        self.show(feats, oz, chiban);
        return feats;
      })
      .catch(function () { self.say('map_search_error', null, true); return null; });
  };

  Parcel.prototype.show = function (feats, oaza, chiban) {
    var app = this.app;
    this.highlight.clearLayers();
    var gj = L.geoJSON({type: 'FeatureCollection', features: feats}, {
      renderer: this.highlightRenderer, interactive: false,
      style: function () {
        return {color: '#ff6f00', weight: 4, opacity: 1, fillColor: '#ffeb3b', fillOpacity: 0.35};
      }
    });
    gj.addTo(this.highlight);
    this.selected = {oaza: oaza, chiban: chiban};
    var b = gj.getBounds();
    app.map.fitBounds(b, {maxZoom: 19, padding: [40, 40], animate: false});
    // anchored on the parcel's north edge, so the popup does not hide the parcel
    if (this.layer) { app.openPopup(this.layer, feats[0], L.latLng(b.getNorth(), b.getCenter().lng)); }
    this.say('map_search_found', {oaza: oaza, chiban: chiban});
    app.map.getContainer().dataset.selected = feats.map(function (f) { return f.id; }).join(',');
    app.writeHash();
    app.refresh();
  };

  // ---- pipe sheets from the parcel popup
  Parcel.prototype.popupExtra = function (lay, feature) {
    var app = this.app, sh = app.cfg.sheet, p = feature.properties || {};
    if (!sh || lay.id !== this.cfg.layer) { return ''; }
    var oaza = p[this.cfg.oazaField], chiban = p[this.cfg.chibanField];
    if (!oaza || !chiban) { return ''; }
    var out = '<div class="pp-sheet"><b>' + esc(app.t('map_sheet')) + '</b><div>';
    sh.papers.forEach(function (paper) {
      sh.scales.forEach(function (scale) {
        out += '<button type="button" class="pp-sheet-btn" data-oaza="' + esc(oaza) +
          '" data-chiban="' + esc(chiban) + '" data-scale="' + scale + '" data-paper="' + paper +
          '">1/' + scale + ' ' + paper + '</button>';
      });
    });
    return out + '</div><p class="pp-sheet-status" aria-live="polite"></p></div>';
  };
  Parcel.prototype.popupOpen = function (el) {
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
        return r.text().then(function (t) {
          var msg = '';
          try { msg = (JSON.parse(t).description || '').replace(/^Error executing process: /, ''); } catch (e) { msg = ''; }
          status.innerHTML = '<span class="gm-error">' + esc(app.t('map_sheet_failed')) +
            (msg ? ': ' + esc(msg) : '') + '</span>';
        });
      }, function () {
        status.innerHTML = '<span class="gm-error">' + esc(app.t('map_sheet_failed')) + '</span>';
      })
      .then(function () { btn.disabled = false; });
  };

  // ---- legend, hash, language
  Parcel.prototype.legendRows = function (lay) {
    if (lay.id !== this.cfg.layer) { return []; }
    return ['<li><span class="gm-swatch gm-swatch-polygon" style="background-color:#ffeb3b;' +
      'border:3px solid #ff6f00" aria-hidden="true"></span><span>' +
      esc(this.app.t('map_parcel_hit')) + '</span></li>'];
  };
  Parcel.prototype.hashParts = function () {
    return this.selected ? {oaza: this.selected.oaza, chiban: this.selected.chiban} : null;
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
