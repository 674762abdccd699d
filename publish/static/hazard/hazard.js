/* Uozu City hazard map: layers, shelter icons, the "what about this spot?" card, ja/en.
 *
 * Data: the page embeds one JSON (<script id="hz-data">, built by publish/maps_hazard.py) with
 * the hazard polygons, shelters, code lists (labels, MLIT colours), layer metadata and every UI
 * string. Geometry comes from libraries only: Turf (point in polygon, bbox) and GeographicLib
 * (ellipsoidal distance). Nothing here needs the network: tiles may fail and all else works.
 */
(function () {
  'use strict';

  var LS_KEY = 'uozu-hazard-lang';
  var DETAIL_ZOOM = 15;          // shelter hazard badges from this zoom on
  var OVERVIEW_ZOOM = 14;        // small shelter pins below this zoom
  var EXTENT_MARGIN = 0.01;      // degrees (~1 km) around the data before "outside the area"
  var H = {ready: false};
  window.UozuHazard = H;

  var D = null;                  // the payload
  var lang = 'ja';
  var map = null;
  var markers = [];
  var probe = null;
  var last = null;               // last evaluated spot (re-rendered on language switch)
  var noticeKey = null;

  // ------------------------------------------------------------------ data and strings

  function data() {
    if (D) { return D; }
    D = JSON.parse(document.getElementById('hz-data').textContent);
    ['flood', 'tsunami', 'landslide'].forEach(function (k) {
      (D.layers[k] || []).forEach(function (f) { f.bbox = turf.bbox(f); });
    });
    lang = initialLang();
    document.documentElement.lang = lang;
    return D;
  }

  function initialLang() {
    var q = new URLSearchParams(window.location.search).get('lang');
    if (q === 'ja' || q === 'en') { return q; }
    try {
      var s = window.localStorage.getItem(LS_KEY);
      if (s === 'ja' || s === 'en') { return s; }
    } catch (e) { /* storage blocked: use the default */ }
    return D.lang_default || 'ja';
  }

  function t(key, vars) {
    var e = D.strings[key];
    var s = e ? (e[lang] !== undefined ? e[lang] : e.ja) : key;
    if (!vars) { return s; }
    return s.replace(/\{(\w+)\}/g, function (m, k) { return vars[k] !== undefined ? vars[k] : m; });
  }

  function lab(entry) {              // a {ja, en} label of the data
    if (!entry) { return t('unknown'); }
    return entry[lang] || entry.ja || '';
  }

  function esc(s) {
    return String(s === null || s === undefined ? '' : s).replace(/[&<>"']/g, function (c) {
      return {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c];
    });
  }

  function bi(entry) {               // both languages (for Leaflet-owned HTML, switched by CSS)
    return '<span class="hz-ja" lang="ja">' + esc(entry.ja) + '</span>' +
      '<span class="hz-en" lang="en">' + esc(entry.en) + '</span>';
  }

  function num(v, digits) {
    return Number(v).toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB',
      {minimumFractionDigits: digits, maximumFractionDigits: digits});
  }

  // ------------------------------------------------------------------ styles and layers

  function depthColor(r) {
    var c = D.codes.depth[String(r)];
    return (c && c.color) || '#cccccc';
  }

  function landslideColor(p) {
    var c = D.landslide_colors[p.p];
    return (c && c[p.v]) || '#fae600';
  }

  var STYLES = {
    flood: function (f) {
      var c = depthColor(f.properties.r);
      return {className: 'hz-flood', fillColor: c, fillOpacity: 0.72, color: c, weight: 0.8,
        opacity: 1};
    },
    tsunami: function (f) {
      return {className: 'hz-tsunami', fillColor: depthColor(f.properties.r), fillOpacity: 0.72,
        color: '#1d4ed8', weight: 1.2, opacity: 0.9, dashArray: '5 4'};
    },
    landslide: function (f) {
      var special = f.properties.v === D.special_level;
      var c = landslideColor(f.properties);
      return special ?
        {className: 'hz-landslide hz-special', fillColor: c, fillOpacity: 0.75, color: c,
          weight: 2, opacity: 1} :
        {className: 'hz-landslide hz-warning', fillColor: c, fillOpacity: 0.55,
          color: '#6b5600', weight: 1.4, opacity: 0.9, dashArray: '4 3'};
    }
  };

  function attribution(kind) {
    var m = D.meta[kind];
    var date = m.date ? {ja: D.strings.as_of.ja.replace('{date}', m.date),
      en: D.strings.as_of.en.replace('{date}', m.date)} : D.strings.date_unknown;
    return '<span class="hz-attr" data-source="' + esc(m.id) + '">' + bi(m.attribution) +
      ' (' + bi(date) + ')</span>';
  }

  /** The Leaflet layer of one kind (called by the folium-generated script). */
  H.layer = function (kind) {
    data();
    if (kind === 'shelter') { return shelterLayer(); }
    return L.geoJSON({type: 'FeatureCollection', features: D.layers[kind]},
      {style: STYLES[kind], interactive: false, attribution: attribution(kind)});
  };

  // ------------------------------------------------------------------ shelters

  function flagLabel(f) { return lab(D.codes.hazard[f]); }

  function shelterIcon(s) {
    var badges = D.flag_order.map(function (f) {
      var on = s.hz.indexOf(f) >= 0;
      return '<b class="hz-badge ' + (on ? 'hz-on' : 'hz-off') + '" data-flag="' + f + '">' +
        (on ? esc(t('glyph_' + f)) : '') + '</b>';
    }).join('');
    return L.divIcon({
      className: 'hz-shelter',
      html: '<span class="hz-pin" aria-hidden="true"><i class="fa-solid fa-person-shelter"></i>' +
        '</span><span class="hz-badges" aria-hidden="true">' + badges + '</span>',
      iconSize: [44, 44], iconAnchor: [22, 22], popupAnchor: [0, -18]
    });
  }

  function shelterKinds(s) {
    var k = [];
    if (s.em) { k.push(t('shelter_emergency')); }
    if (s.ev) { k.push(t('shelter_evacuation')); }
    return k;
  }

  function labelMarker(m) {
    var el = m.getElement();
    if (!el) { return; }
    var s = m.shelter;
    var list = s.hz.map(flagLabel).join(t('list_sep')) || t('shelter_aria_none');
    el.setAttribute('aria-label', t('shelter_aria', {name: s.n, list: list}));
    el.setAttribute('data-shelter-id', s.id);
    el.removeAttribute('title');
  }

  function shelterPopup(s) {
    var rows = D.flag_order.map(function (f) {
      var on = s.hz.indexOf(f) >= 0;
      return '<li class="' + (on ? 'hz-on' : 'hz-off') + '"><b class="hz-badge ' +
        (on ? 'hz-on' : 'hz-off') + '" aria-hidden="true">' + (on ? esc(t('glyph_' + f)) : '') +
        '</b> <span>' + esc(flagLabel(f)) + '：' + esc(on ? t('shelter_yes') : t('shelter_no')) +
        '</span></li>';
    }).join('');
    return '<div class="hz-popup" lang="' + lang + '"><h3>' + esc(s.n) + '</h3>' +
      (s.ad ? '<p>' + esc(s.ad) + '</p>' : '') +
      '<p class="hz-small">' + esc(shelterKinds(s).join(' / ')) + '</p>' +
      '<p><strong>' + esc(t('shelter_for')) + '</strong></p><ul class="hz-popup-flags">' + rows +
      '</ul></div>';
  }

  function shelterLayer() {
    var group = L.layerGroup([], {attribution: attribution('shelter')});
    markers = [];
    (D.layers.shelter || []).forEach(function (s) {
      var m = L.marker([s.lat, s.lon], {icon: shelterIcon(s), keyboard: true, riseOnHover: true});
      m.shelter = s;
      m.bindPopup(function () { return shelterPopup(s); }, {
        maxWidth: 290, autoPanPaddingTopLeft: [10, 112], autoPanPaddingBottomRight: [10, 40]});
      m.on('add', function () { labelMarker(m); });
      markers.push(m);
      group.addLayer(m);
    });
    return group;
  }

  // ------------------------------------------------------------------ the risk card

  function hits(kind, pt) {
    return (D.layers[kind] || []).filter(function (f) {
      return turf.booleanPointInPolygon(pt, f);
    }).map(function (f) { return f.properties; });
  }

  function deepest(list) {
    return list.reduce(function (a, p) { return !a || (p.r || 0) > (a.r || 0) ? p : a; }, null);
  }

  function worstPerPhenomenon(list) {
    var levels = Object.keys(D.codes.level);
    var by = {};
    list.forEach(function (p) {
      var cur = by[p.p];
      if (!cur || levels.indexOf(p.v) > levels.indexOf(cur.v)) { by[p.p] = p; }
    });
    var order = Object.keys(D.codes.phenomenon);
    return Object.keys(by).sort(function (a, b) {
      return order.indexOf(a) - order.indexOf(b);
    }).map(function (k) { return by[k]; });
  }

  function nearest(flag, lat, lng) {
    var g = geodesic.Geodesic.WGS84;
    return (D.layers.shelter || []).filter(function (s) { return s.hz.indexOf(flag) >= 0; })
      .map(function (s) { return {s: s, d: g.Inverse(lat, lng, s.lat, s.lon).s12}; })
      .sort(function (a, b) { return a.d - b.d; })
      .slice(0, D.n_nearest);
  }

  function inExtent(lat, lng) {
    var e = D.extent;
    return lng >= e[0] - EXTENT_MARGIN && lng <= e[2] + EXTENT_MARGIN &&
      lat >= e[1] - EXTENT_MARGIN && lat <= e[3] + EXTENT_MARGIN;
  }

  /** Evaluate one spot: hazards there and the nearest suitable shelters; renders the card. */
  H.evaluate = function (lat, lng, source, accuracy) {
    data();
    var pt = turf.point([lng, lat]);
    var res = {
      lat: lat, lng: lng, source: source || 'tap', accuracy: accuracy,
      inside: inExtent(lat, lng),
      flood: deepest(hits('flood', pt)),
      tsunami: deepest(hits('tsunami', pt)),
      landslide: worstPerPhenomenon(hits('landslide', pt)),
      shelters: []
    };
    var present = [];
    if (res.flood) { present.push('flood'); }
    if (res.tsunami) { present.push('tsunami'); }
    if (res.landslide.length) { present.push('landslide'); }
    var flags = [];
    (present.length ? present : ['none']).forEach(function (k) {
      (D.shelter_flags_for[k] || []).forEach(function (f) {
        if (flags.indexOf(f) < 0) { flags.push(f); }
      });
    });
    res.shelters = flags.map(function (f) {
      return {flag: f, list: nearest(f, lat, lng)};
    });
    last = res;
    render(res);
    placeProbe(lat, lng);
    return summary(res);
  };

  function summary(res) {           // plain data for tests and other scripts
    return {
      flood: res.flood, tsunami: res.tsunami, landslide: res.landslide,
      shelters: res.shelters.map(function (g) {
        return {flag: g.flag, list: g.list.map(function (x) {
          return {id: x.s.id, name: x.s.n, distance_m: x.d};
        })};
      })
    };
  }

  function rangeText(p) {
    var c = D.codes.depth[String(p.r)] || {};
    var a = p.a !== undefined ? p.a : c.min;
    var b = p.b !== undefined ? p.b : c.max;
    if ((a === null || a === undefined || a === 0) && b !== null && b !== undefined) {
      return t('range_below_m', {max: num(b, 1)});
    }
    if (b === null || b === undefined) {
      return a === null || a === undefined ? t('unknown') : t('range_open_m', {min: num(a, 1)});
    }
    return t('range_m', {min: num(a, 1), max: num(b, 1)});
  }

  function el(tag, attrs, kids) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === 'text') { n.textContent = attrs[k]; } else { n.setAttribute(k, attrs[k]); }
    });
    (kids || []).forEach(function (c) {
      if (c !== null && c !== undefined) {
        n.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
      }
    });
    return n;
  }

  function chip(color, text) {
    return el('span', {'class': 'hz-chip', style: 'background-color:' + color, 'aria-hidden': 'true',
      text: text});
  }

  function risk(kind, title, lines, attrs) {
    var dd = el('dd', {}, lines);
    var box = el('div', Object.assign({'class': 'hz-risk', 'data-hazard': kind}, attrs || {}),
      [el('dt', {text: title}), dd]);
    return box;
  }

  function render(res) {
    var card = document.getElementById('hz-card');
    var where = res.source === 'gps' ?
      t('point_gps', {acc: Math.round(res.accuracy || 0)}) :
      t(res.source === 'centre' ? 'point_centre' : 'point_tap');
    var parts = [
      el('h3', {'class': 'hz-card-title', text: t('card_title')}),
      el('p', {'class': 'hz-where', text: where + ' · ' + t('coords',
        {lat: res.lat.toFixed(5), lon: res.lng.toFixed(5)})})
    ];
    if (!res.inside) { parts.push(el('p', {'class': 'hz-warn', text: t('outside_area')})); }
    var dl = el('dl', {'class': 'hz-risks'});
    if (D.layers.flood) {
      var f = res.flood;
      dl.appendChild(f ?
        risk('flood', t('flood'), [chip(depthColor(f.r), String(f.r)),
          el('span', {text: t('flood_in', {rank: f.r, label: lab(D.codes.depth[String(f.r)]),
            range: rangeText(f)})}),
          f.n ? el('span', {'class': 'hz-sub', text: t('flood_river', {river: f.n})}) : null],
        {'data-rank': f.r}) :
        risk('flood', t('flood'), [t('flood_none')], {'data-rank': 0}));
    }
    if (D.layers.tsunami) {
      var s = res.tsunami;
      dl.appendChild(s ?
        risk('tsunami', t('tsunami'), [chip(depthColor(s.r), String(s.r)),
          el('span', {text: t('tsunami_in', {rank: s.r, range: rangeText(s),
            label: s.l || lab(D.codes.depth[String(s.r)])})})], {'data-rank': s.r}) :
        risk('tsunami', t('tsunami'), [t('tsunami_none')], {'data-rank': 0}));
    }
    if (D.layers.landslide) {
      if (res.landslide.length) {
        var lines = [];
        res.landslide.forEach(function (p) {
          var ph = lab(D.codes.phenomenon[p.p]);
          var lv = lab(D.codes.level[p.v]);
          lines.push(el('span', {'class': 'hz-line', 'data-phenomenon': p.p, 'data-level': p.v},
            [chip(landslideColor(p), ''),
              t('landslide_in', {phenomenon: ph, phenomenon_lc: ph.toLowerCase(), level: lv}) +
              (p.d === false ? ' ' + t('landslide_pre') : '') +
              (p.n ? ' — ' + t('landslide_zone_name', {name: p.n}) : '')]));
        });
        dl.appendChild(risk('landslide', t('landslide'), lines,
          {'data-level': res.landslide.map(function (p) { return p.v; }).join(' ')}));
      } else {
        dl.appendChild(risk('landslide', t('landslide'), [t('landslide_none')],
          {'data-level': ''}));
      }
    }
    parts.push(dl);
    var none = !res.flood && !res.tsunami && !res.landslide.length;
    if (none) {
      parts.push(el('p', {'class': 'hz-none', text: t('none_all')}));
      parts.push(el('p', {'class': 'hz-small', text: t('none_note')}));
    }
    res.shelters.forEach(function (g) {
      var items = g.list.map(function (x) {
        var btn = el('button', {type: 'button', 'class': 'hz-btn hz-go', text: t('show_on_map')});
        btn.addEventListener('click', function () { showShelter(x.s.id); });
        return el('li', {'data-shelter-id': x.s.id, 'data-distance': x.d.toFixed(1)}, [
          el('span', {'class': 'hz-sh-name', text: x.s.n}),
          el('span', {'class': 'hz-sh-dist', text: t('shelter_distance', {d: num(Math.round(x.d), 0)})}),
          btn]);
      });
      parts.push(el('section', {'class': 'hz-shelters', 'data-flag': g.flag}, [
        el('h4', {text: t('shelters_for', {hazard: flagLabel(g.flag)})}),
        items.length ? el('ol', {}, items) : el('p', {text: t('shelters_none')})]));
    });
    parts.push(el('p', {'class': 'hz-small', text: t('distance_note')}));
    card.replaceChildren.apply(card, parts);
    card.setAttribute('data-state', 'result');
    var sheet = document.getElementById('hz-sheet');
    sheet.scrollTop = Math.max(0, card.offsetTop - sheet.offsetTop - 8);  // show the card's top
  }

  function placeProbe(lat, lng) {
    if (!map) { return; }
    if (!probe) {
      probe = L.marker([lat, lng], {
        icon: L.divIcon({className: 'hz-probe', html: '<span></span>', iconSize: [30, 30]}),
        interactive: false, keyboard: false, zIndexOffset: 1000
      }).addTo(map);
    } else {
      probe.setLatLng([lat, lng]);
    }
    probe.getElement().setAttribute('aria-label', t('probe_label'));
    window.requestAnimationFrame(function () {
      map.invalidateSize();
      map.panInside([lat, lng], {padding: [40, 40]});
    });
  }

  function showShelter(id) {
    var m = markers.filter(function (x) { return x.shelter.id === id; })[0];
    if (!m) { return; }
    if (H.layers && H.layers.shelter && !map.hasLayer(H.layers.shelter)) {
      map.addLayer(H.layers.shelter);
    }
    map.setView(m.getLatLng(), Math.max(map.getZoom(), DETAIL_ZOOM));
    m.openPopup();
  }

  // ------------------------------------------------------------------ location, notices

  function notice(key) {
    noticeKey = key;
    var n = document.getElementById('hz-notice');
    if (!key) { n.hidden = true; n.textContent = ''; return; }
    n.textContent = t(key);
    n.hidden = false;
  }

  function locate() {
    if (!('geolocation' in navigator) || window.isSecureContext === false) {
      notice('geo_unsupported');
      return;
    }
    notice('geo_locating');
    navigator.geolocation.getCurrentPosition(function (pos) {
      notice(null);
      var c = pos.coords;
      map.setView([c.latitude, c.longitude], Math.max(map.getZoom(), DETAIL_ZOOM));
      H.evaluate(c.latitude, c.longitude, 'gps', c.accuracy);
    }, function (err) {
      notice(err && err.code === 1 ? 'geo_denied' : err && err.code === 3 ? 'geo_timeout' :
        'geo_unavailable');
    }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
  }

  function tilesFailed() {
    var n = document.getElementById('hz-tiles-notice');
    if (!n) {
      n = el('p', {id: 'hz-tiles-notice', 'class': 'hz-small hz-tiles-notice'});
      var sheet = document.getElementById('hz-sheet');
      sheet.insertBefore(n, document.getElementById('hz-card'));
    }
    n.textContent = t('tiles_failed');
  }

  // ------------------------------------------------------------------ language, legend

  H.setLang = function (l) {
    lang = l === 'en' ? 'en' : 'ja';
    document.documentElement.lang = lang;
    try { window.localStorage.setItem(LS_KEY, lang); } catch (e) { /* not remembered */ }
    document.title = t('page_title');
    var btn = document.getElementById('hz-lang-btn');
    if (btn) { btn.setAttribute('aria-label', t('lang_switch_label')); }
    var attr = map && map.attributionControl && map.attributionControl.getContainer();
    if (attr) { attr.setAttribute('title', t('attr_toggle')); }
    if (map) {
      map.getContainer().setAttribute('aria-label', t('map_label'));
      map.closePopup();
    }
    markers.forEach(function (m) {
      m.setIcon(shelterIcon(m.shelter));
      labelMarker(m);
    });
    if (probe) { probe.getElement().setAttribute('aria-label', t('probe_label')); }
    if (last) { render(last); }
    if (noticeKey) { notice(noticeKey); }
    if (document.getElementById('hz-tiles-notice')) { tilesFailed(); }
  };

  H.lang = function () { return lang; };
  H.lastPoint = function () { return last ? {lat: last.lat, lng: last.lng} : null; };

  function toggleLegend(open) {
    var panel = document.getElementById('hz-legend');
    var btn = document.getElementById('hz-legend-btn');
    var show = open === undefined ? panel.hidden : open;
    panel.hidden = !show;
    btn.setAttribute('aria-expanded', show ? 'true' : 'false');
    if (show) { document.getElementById('hz-legend-close').focus(); } else { btn.focus(); }
  }

  // ------------------------------------------------------------------ start

  /** Called once by the folium script after the map, layers and layer control exist. */
  H.init = function (m, layers, tiles) {
    data();
    map = m;
    H.map = m;
    H.layers = layers;
    var e = D.extent;
    m.fitBounds([[e[1], e[0]], [e[3], e[2]]], {animate: false});
    var box = m.getContainer();
    m.on('click', function (e) { H.evaluate(e.latlng.lat, e.latlng.lng, 'tap'); });
    var detail = function () {
      box.classList.toggle('hz-detail', m.getZoom() >= DETAIL_ZOOM);
      box.classList.toggle('hz-overview', m.getZoom() < OVERVIEW_ZOOM);
    };
    m.on('zoomend', detail);
    detail();
    (tiles || []).forEach(function (tl) { tl.on('tileerror', tilesFailed); });
    document.getElementById('hz-locate').addEventListener('click', locate);
    document.getElementById('hz-centre').addEventListener('click', function () {
      var c = m.getCenter();
      H.evaluate(c.lat, c.lng, 'centre');
    });
    document.getElementById('hz-lang-btn').addEventListener('click', function () {
      H.setLang(lang === 'ja' ? 'en' : 'ja');
    });
    document.getElementById('hz-legend-btn').addEventListener('click', function () {
      toggleLegend();
    });
    document.getElementById('hz-legend-close').addEventListener('click', function () {
      toggleLegend(false);
    });
    document.addEventListener('keydown', function (e) {
      if (e.key === 'Escape' && !document.getElementById('hz-legend').hidden) {
        toggleLegend(false);
      }
    });
    var attr = m.attributionControl && m.attributionControl.getContainer();
    if (attr) {
      attr.classList.add('hz-clamp');
      attr.setAttribute('tabindex', '0');
      var fold = function () {
        var open = attr.classList.toggle('hz-open');
        attr.setAttribute('aria-expanded', open ? 'true' : 'false');
      };
      attr.addEventListener('click', function (e) { if (e.target.tagName !== 'A') { fold(); } });
      attr.addEventListener('keydown', function (e) {
        if ((e.key === 'Enter' || e.key === ' ') && e.target === attr) { e.preventDefault(); fold(); }
      });
      L.DomEvent.disableClickPropagation(attr);
    }
    if (window.ResizeObserver) {
      new ResizeObserver(function () { m.invalidateSize(); }).observe(box);  // keeps the centre
    }
    H.setLang(lang);
    document.body.classList.add('hz-ready');
    H.ready = true;
  };
}());
