/*
 * Risk-card behaviour of the map pages (on when the page has hazard or shelter layers):
 * tap a spot (or use "my location" / "check centre") and the card lists, for every hazard layer
 * on the page, the worst rank there (per group, e.g. per 現象 of sediment zones) with its colour,
 * and the nearest shelters designated for the hazards found (or for the default kinds when the
 * spot is in no zone). Shelters are pins with one badge per hazard kind (text, not colour alone).
 *
 * The card is honest: where a hazard was not assessed (outside the map's area, or outside the
 * area a partial study covers: ``coverage`` of the data file) it says "no data", never "outside
 * the zones", and the all-clear line only shows when every hazard has data there; a shelter
 * lying inside a zone of the hazard it is designated for is flagged in words (list, details,
 * marker label); under each hazard found, the spec's "what to do" for the worst rank. Each list
 * of shelters offers a walking route (route.js, the release's ``walk-route`` process), drawn on
 * the map and told as text in the card; with the API unreachable it says so, never hangs.
 *
 * Geometry comes from libraries only: Turf (point in polygon) and GeographicLib (ellipsoidal
 * distance; Turf's is spherical and 0.2 % off), loaded after the map is first drawn (only the
 * card needs them). Everything the card reads is in the page's data file: no API, no tiles
 * needed; the zones are drawn from the tiles, the shelters are focusable markers.
 */
(function () {
  'use strict';

  var G = window.GisMap;
  var esc = G.esc;
  var DETAIL_ZOOM = 15;          // shelter hazard badges from this zoom on
  var OVERVIEW_ZOOM = 14;        // small shelter pins below this zoom

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

  function Hazard(app) {
    var self = this;
    this.app = app;
    this.kinds = app.cfg.hazard.kinds;
    this.hazards = app.order.filter(function (l) { return l.conf.hazard; });
    this.shelters = app.order.filter(function (l) { return l.conf.shelter; });
    this.markers = [];
    this.probe = null;
    this.last = null;
    this.coverage = {};
    this.routeConf = app.cfg.hazard.route || null;
    this.panel = null;      // GisRoute.Panel, made when the first route is asked for
    this.routeKind = null;  // the list whose route is shown (kept across language switches)
    this.routeBox = el('div', {'class': 'rt-panel', id: 'hz-route', 'aria-live': 'polite',
      'aria-atomic': 'false', hidden: 'hidden'});
    var map = app.map, box = map.getContainer();
    var detail = function () {
      box.classList.toggle('hz-detail', map.getZoom() >= DETAIL_ZOOM);
      box.classList.toggle('hz-overview', map.getZoom() < OVERVIEW_ZOOM);
    };
    map.on('zoomend', detail);
    detail();
    document.getElementById('hz-centre').addEventListener('click', function () {
      var c = map.getCenter();
      self.evaluate(c.lat, c.lng, 'centre');
    });
    this.libs = null;
    G.hazard = this;
  }

  /** Turf and GeographicLib, once: after the first drawing of the map (or at once if none). */
  Hazard.prototype.loadLibs = function () {
    var urls = (this.app.cfg.later || []).concat(
      this.routeConf && this.routeConf.script ? [this.routeConf.script] : []);
    if (this.libs) { return this.libs; }
    this.libs = urls.reduce(function (p, url) {
      return p.then(function () {
        return new Promise(function (resolve, reject) {
          var s = document.createElement('script');
          s.src = url;
          s.onload = resolve;
          s.onerror = reject;
          document.head.appendChild(s);
        });
      });
    }, Promise.resolve());
    return this.libs;
  };

  Hazard.prototype.t = function (key, vars) { return this.app.t(key, vars); };
  Hazard.prototype.lab = function (e) { return e ? this.app.lab(e) : this.t('map_unknown'); };
  Hazard.prototype.num = function (v, digits) {
    return Number(v).toLocaleString(this.app.lang === 'en' ? 'en-GB' : 'ja-JP',  // ja, ja@easy
      {minimumFractionDigits: digits, maximumFractionDigits: digits});
  };

  Hazard.prototype.data = function () {
    var self = this, app = this.app;
    var area = app.data && app.data.area;
    this.area = area ? {type: 'Feature', properties: {}, geometry: area} : null;
    var cov = (app.data && app.data.coverage) || {};
    this.coverage = {};
    Object.keys(cov).forEach(function (id) {
      self.coverage[id] = {type: 'Feature', properties: {}, geometry: cov[id]};
    });
    var go = function () { self.loadLibs(); };
    if (app.vt && app.stats.firstPaint === null) {
      app.vt.once('load', go);
      window.setTimeout(go, 4000);
    } else {
      go();
    }
  };

  // ------------------------------------------------------------------ shelters

  Hazard.prototype.flagsOf = function (lay) { return lay.conf.shelter.flags; };
  Hazard.prototype.glyph = function (kind) {
    var k = this.kinds[kind];
    return k ? this.app.lab(k.glyph) : '?';
  };
  Hazard.prototype.shelterIcon = function (lay, f) {
    var self = this, hz = f.properties.hz || [];
    var badges = this.flagsOf(lay).map(function (fl) {
      var on = hz.indexOf(fl.field) >= 0;
      // the glyph is drawn by CSS (content: attr(data-glyph)): the marker's name is its label,
      // which says every hazard in words (a glyph inside would not match it: axe, WCAG 2.5.3)
      return '<b class="hz-badge ' + (on ? 'hz-on' : 'hz-off') + '" data-flag="' + esc(fl.field) +
        '"' + (on ? ' data-glyph="' + esc(self.glyph(fl.kind)) + '"' : '') + '></b>';
    }).join('');
    var warn = this.inZone(f).length > 0;
    return L.divIcon({
      className: 'hz-shelter' + (warn ? ' hz-inzone' : ''),
      html: '<span class="hz-pin" aria-hidden="true" style="background-color:' +
        esc(lay.conf.style.color) + '"><i class="hz-icon"></i></span>' +
        '<span class="hz-badges" aria-hidden="true">' + badges + '</span>' +
        (warn ? '<span class="hz-warn-mark" aria-hidden="true"></span>' : ''),
      iconSize: [44, 44], iconAnchor: [22, 22]
    });
  };
  /** "Caution: this shelter lies inside the <kind> zone (<rank>)" for one entry of ``iz``. */
  Hazard.prototype.inZoneText = function (e) {
    var k = this.kinds[e.k], title = k ? k.title : {ja: e.k, en: e.k};
    var label = e.lb ? this.app.lab(e.lb) : (e.r || this.t('map_unknown'));
    return this.t('card_shelter_in_zone', {kind: this.app.lab(title),
      kind_en: String(title.en).toLowerCase(), label: label});
  };
  /** The in-zone entries of a shelter (for ``kinds`` only when given). */
  Hazard.prototype.inZone = function (f, kinds) {
    return (f.properties.iz || []).filter(function (e) { return !kinds || kinds.indexOf(e.k) >= 0; });
  };
  Hazard.prototype.labelMarker = function (m) {
    var node = m.getElement();
    if (!node) { return; }
    var self = this, p = m.feature.properties, lay = m.gmLayer;
    var list = this.flagsOf(lay).filter(function (fl) { return (p.hz || []).indexOf(fl.field) >= 0; })
      .map(function (fl) { return self.lab(fl.title); }).join(this.t('map_list_sep')) ||
      this.t('map_hz_shelter_aria_none');
    var warn = this.inZone(m.feature).map(function (e) { return self.inZoneText(e); });
    node.setAttribute('aria-label', [this.t('map_hz_shelter_aria', {name: p.n, list: list})]
      .concat(warn).join(' '));
    node.classList.toggle('hz-inzone', warn.length > 0);
    node.setAttribute('data-shelter-id', m.feature.id);
    node.removeAttribute('title');
  };
  Hazard.prototype.shelterPopup = function (lay, f) {
    var self = this, p = f.properties, hz = p.hz || [];
    var rows = this.flagsOf(lay).map(function (fl) {
      var on = hz.indexOf(fl.field) >= 0;
      return '<li class="' + (on ? 'hz-on' : 'hz-off') + '"><b class="hz-badge ' +
        (on ? 'hz-on' : 'hz-off') + '" aria-hidden="true">' + (on ? esc(self.glyph(fl.kind)) : '') +
        '</b> <span>' + esc(self.lab(fl.title)) + '：' +
        esc(self.t(on ? 'map_hz_shelter_yes' : 'map_hz_shelter_no')) + '</span></li>';
    }).join('');
    var types = lay.conf.shelter.types.filter(function (ty) {
      return (p.ty || []).indexOf(ty.field) >= 0;
    }).map(function (ty) { return self.lab(ty.title); });
    return '<div class="hz-popup gm-popup" data-layer="' + esc(lay.id) + '" data-id="' +
      esc(f.id) + '" lang="' + this.app.htmlLang() + '"><h3>' + esc(p.n) + '</h3>' +
      (p.ad ? '<p>' + esc(p.ad) + '</p>' : '') +
      (types.length ? '<p class="gm-small">' + esc(types.join(' / ')) + '</p>' : '') +
      '<p><strong>' + esc(this.t('map_hz_shelter_for')) + '</strong></p><ul class="hz-popup-flags">' +
      rows + '</ul>' + this.inZone(f).map(function (e) {
        return '<p class="hz-inzone-text" data-kind="' + esc(e.k) + '">' +
          esc(self.t('card_in_zone_mark', {text: self.inZoneText(e)})) + '</p>';
      }).join('') + '</div>';
  };
  /** The marker of a shelter (called by the core for point features); a click or Enter shows
   * its details in the sheet. */
  Hazard.prototype.pointLayer = function (lay, f, ll) {
    if (!lay.conf.shelter) { return undefined; }
    var self = this;
    var m = L.marker(ll, {icon: this.shelterIcon(lay, f), keyboard: true, riseOnHover: true});
    m.gmLayer = lay;
    m.feature = f;
    m.on('add', function () { self.labelMarker(m); });
    this.markers.push(m);
    return m;
  };
  Hazard.prototype.detailHtml = function (pk) {
    return pk.lay.conf.shelter && pk.feature ? this.shelterPopup(pk.lay, pk.feature) : undefined;
  };
  Hazard.prototype.legendRows = function (lay) {
    var self = this;
    if (!lay.conf.shelter) { return []; }
    return ['<li class="gm-small">' + esc(this.t('map_hz_legend_shelter_note')) + '</li>']
      .concat(this.flagsOf(lay).map(function (fl) {
        return '<li data-flag="' + esc(fl.field) + '"><b class="hz-badge hz-on" aria-hidden="true">' +
          esc(self.glyph(fl.kind)) + '</b> <span>' + esc(self.lab(fl.title)) + '</span></li>';
      }));
  };

  // ------------------------------------------------------------------ the risk card

  Hazard.prototype.mapClick = function (e) {
    this.evaluate(e.latlng.lat, e.latlng.lng, 'tap');
  };
  /** The card needs the libraries: taps before they arrive are answered when they have. */
  Hazard.prototype.whenReady = function (fn) {
    if (window.turf && window.geodesic) { return fn(); }
    this.loadLibs().then(fn);
    return null;
  };
  Hazard.prototype.located = function (lat, lng, acc) {
    this.evaluate(lat, lng, 'gps', acc);
  };

  /** The worst zone of each hazard layer at ``pt`` (per group when the layer has groups). */
  Hazard.prototype.hits = function (lay, pt) {
    var h = lay.conf.hazard, order = h.rankOrder, by = {};
    var x = pt.geometry.coordinates[0], y = pt.geometry.coordinates[1];
    lay.raw.forEach(function (f) {
      if (!f.geometry) { return; }
      var b = f.bbox || (f.bbox = turf.bbox(f));
      if (x < b[0] || x > b[2] || y < b[1] || y > b[3]) { return; }
      if (!turf.booleanPointInPolygon(pt, f)) { return; }
      var p = f.properties, g = h.groupOrder.length ? String(p.g) : '';
      var cur = by[g];
      if (!cur || order.indexOf(p.r) > order.indexOf(cur.r)) { by[g] = p; }
    });
    return Object.keys(by).sort(function (a, b) {
      return h.groupOrder.indexOf(a) - h.groupOrder.indexOf(b);
    }).map(function (k) { return by[k]; });
  };

  Hazard.prototype.nearest = function (lay, field, n, lat, lng) {
    var g = geodesic.Geodesic.WGS84, out = [];
    lay.raw.forEach(function (f) {
      var p = f.properties;
      if (!f.geometry || (p.hz || []).indexOf(field) < 0) { return; }
      var c = f.geometry.coordinates;
      out.push({f: f, lay: lay, d: g.Inverse(lat, lng, c[1], c[0]).s12});
    });
    return out.sort(function (a, b) { return a.d - b.d; }).slice(0, n);
  };

  /** Evaluate one spot: hazards there and the nearest suitable shelters; renders the card. */
  Hazard.prototype.evaluate = function (lat, lng, source, accuracy) {
    var self = this;
    this.placeProbe(lat, lng);
    return this.whenReady(function () { return self.evaluateNow(lat, lng, source, accuracy); });
  };
  /** No data for a hazard at ``pt``: 'outside' (beyond the map's area), 'coverage' (beyond the
   * area its study covers) or null. A zone found there always counts (the data says so). */
  Hazard.prototype.noData = function (lay, pt, inside, hits) {
    if (hits.length) { return null; }
    if (!inside) { return 'outside'; }
    var cov = this.coverage[lay.id];
    return cov && !turf.booleanPointInPolygon(pt, cov) ? 'coverage' : null;
  };

  /** One list per hazard kind: the nearest of every shelter layer flagged for it (a site in two
   * layers, same name within 2 m, once), so no kind is listed twice. */
  Hazard.prototype.shelterLists = function (kinds, lat, lng) {
    var self = this, by = {}, out = [];
    this.shelters.forEach(function (lay) {
      var sh = lay.conf.shelter;
      var want = kinds.length ? kinds : sh.defaultKinds;
      sh.flags.forEach(function (fl) {
        if (want.indexOf(fl.kind) < 0) { return; }
        var g = by[fl.kind];
        if (!g) { g = by[fl.kind] = {kind: fl.kind, flag: fl, lay: lay, n: 0, list: []}; out.push(g); }
        g.n = Math.max(g.n, sh.nearest);
        g.list = g.list.concat(self.nearest(lay, fl.field, sh.nearest, lat, lng));
      });
    });
    out.forEach(function (g) {
      var seen = [];
      g.list = g.list.sort(function (a, b) { return a.d - b.d; }).filter(function (x) {
        var twice = seen.some(function (y) {
          return y.f.properties.n === x.f.properties.n && Math.abs(y.d - x.d) < 2;
        });
        seen.push(x);
        return !twice;
      }).slice(0, g.n);
    });
    return out;
  };

  Hazard.prototype.evaluateNow = function (lat, lng, source, accuracy) {
    var self = this, pt = turf.point([lng, lat]);
    var res = {lat: lat, lng: lng, source: source || 'tap', accuracy: accuracy,
      inside: !this.area || turf.booleanPointInPolygon(pt, this.area), risks: [], shelters: []};
    var kinds = [];
    this.hazards.forEach(function (lay) {
      var hits = self.hits(lay, pt);
      res.risks.push({lay: lay, hits: hits, nodata: self.noData(lay, pt, res.inside, hits)});
      if (hits.length && kinds.indexOf(lay.conf.hazard.kind) < 0) { kinds.push(lay.conf.hazard.kind); }
    });
    res.shelters = this.shelterLists(kinds, lat, lng);
    if (this.panel) { this.panel.clear(); }  // a route from the previous spot no longer fits
    this.routeKind = null;
    this.last = res;
    this.render(res);
    return this.summary(res);
  };

  Hazard.prototype.summary = function (res) {  // plain data for tests and other scripts
    var self = this;
    return {
      inside: res.inside,
      risks: res.risks.map(function (r) {
        return {layer: r.lay.id, hits: r.hits, nodata: r.nodata};
      }),
      shelters: res.shelters.map(function (g) {
        return {flag: g.flag.field, kind: g.kind, list: g.list.map(function (x) {
          return {id: x.f.id, layer: x.lay.id, name: x.f.properties.n, distance_m: x.d,
            inZone: self.inZone(x.f, [g.kind])};
        })};
      })
    };
  };

  Hazard.prototype.rangeText = function (h, p) {
    var c = h.ranks[p.r] || {};
    var a = p.a !== undefined ? p.a : c.min;
    var b = p.b !== undefined ? p.b : c.max;
    if ((a === null || a === undefined || a === 0) && b !== null && b !== undefined) {
      return this.t('map_hz_range_below_m', {max: this.num(b, 1)});
    }
    if (b === null || b === undefined) {
      return a === null || a === undefined ? this.t('map_unknown') :
        this.t('map_hz_range_open_m', {min: this.num(a, 1)});
    }
    return this.t('map_hz_range_m', {min: this.num(a, 1), max: this.num(b, 1)});
  };

  /** One line of the card from the layer's template (or the generic one). */
  Hazard.prototype.line = function (lay, p) {
    var self = this, h = lay.conf.hazard, app = this.app;
    var hasRange = p.a !== undefined || p.b !== undefined ||
      (h.ranks[p.r] && (h.ranks[p.r].min !== undefined || h.ranks[p.r].max !== undefined));
    var tpl = h.card ? app.lab(h.card) : this.t(hasRange ? 'map_hz_hit_range' : 'map_hz_hit');
    var x = p.x || {};
    return G.fillTemplate(tpl, function (k, label) {
      switch (k) {
        case 'rank': return p.r;
        case 'label': return self.lab(h.ranks[p.r]);
        case 'range': return self.rangeText(h, p);
        case 'group': return self.lab(h.groups[p.g]);
        case 'name': return p.n;
        case 'title': return app.lab(lay.conf.title);
      }
      if (label) { return x[k + '_' + app.lang] || x[k + '_ja'] || x[k]; }
      return x[k];
    });
  };

  Hazard.prototype.kindTitle = function (lay) {
    var k = this.kinds[lay.conf.hazard.kind];
    return k ? this.app.lab(k.title) : this.app.lab(lay.conf.title);
  };

  Hazard.prototype.render = function (res) {
    var self = this, app = this.app;
    var card = document.getElementById('hz-card');
    var where = res.source === 'gps' ?
      this.t('map_hz_point_gps', {acc: Math.round(res.accuracy || 0)}) :
      this.t(res.source === 'centre' ? 'map_hz_point_centre' : 'map_hz_point_tap');
    var parts = [
      el('h3', {'class': 'hz-card-title', text: this.t('map_hz_card_title')}),
      el('p', {'class': 'hz-where', text: where + ' · ' + this.t('map_hz_coords',
        {lat: res.lat.toFixed(5), lon: res.lng.toFixed(5)})})
    ];
    if (!res.inside) {
      parts.push(el('p', {'class': 'hz-warn', text: this.t('map_outside', {city: app.lab(app.cfg.city)})}));
    }
    var dl = el('dl', {'class': 'hz-risks'}), any = false, nodata = 0;
    res.risks.forEach(function (r) {
      var h = r.lay.conf.hazard, kind = h.kind;
      var attrs = {'class': 'hz-risk', 'data-hazard': kind, 'data-layer': r.lay.id,
        'data-rank': r.hits.map(function (p) { return p.r; }).join(' ') || '0'};
      var lines = [];
      if (r.nodata) {
        nodata += 1;
        attrs['data-nodata'] = r.nodata;
        var title = r.lay.conf.title;
        lines.push(el('span', {'class': 'hz-nodata'}, [r.nodata === 'outside' ?
          self.t('card_no_data_outside', {title: app.lab(title)}) :
          self.t('card_no_data', {title: app.lab(title), title_en: title.en})]));
      } else if (r.hits.length) {
        any = true;
        r.hits.forEach(function (p) {
          var col = r.lay.hazardColor(p.r, p.g);
          var kids = [el('span', {'class': 'hz-chip', style: 'background-color:' + col.c,
            'aria-hidden': 'true', text: h.groupOrder.length ? '' : String(p.r)}),
          self.line(r.lay, p) + (p.u ? ' ' + self.t('map_hz_undesignated') : '')];
          if (p.n !== undefined && p.n !== null && h.cardName) {
            kids.push(el('span', {'class': 'hz-sub', text: G.fillTemplate(app.lab(h.cardName),
              function (k) { return k === 'name' ? p.n : ''; })}));
          } else if (p.n !== undefined && p.n !== null) {
            kids.push(el('span', {'class': 'hz-sub', text: self.t('map_hz_name', {name: p.n})}));
          }
          var lineAttrs = {'class': 'hz-line', 'data-rank': p.r};
          if (h.groupOrder.length) { lineAttrs['data-group'] = p.g; }
          lines.push(el('span', lineAttrs, kids));
        });
      } else {
        lines.push(h.cardNone ? app.lab(h.cardNone) :
          self.t('map_hz_none', {title: app.lab(r.lay.conf.title)}));
      }
      var dd = el('dd', {}, lines), todo = r.hits.length ? self.guidance(h, r.hits) : null;
      if (todo) {
        dd.appendChild(el('div', {'class': 'hz-guidance'}, [
          el('strong', {text: self.t('card_guidance')}), el('p', {text: todo})]));
      }
      dl.appendChild(el('div', attrs, [el('dt', {text: self.kindTitle(r.lay)}), dd]));
    });
    if (res.risks.length) { parts.push(dl); }
    if (res.risks.length && !any && !nodata) {  // the all-clear only where every hazard has data
      parts.push(el('p', {'class': 'hz-none', text: this.t('map_hz_none_all')}));
      parts.push(el('p', {'class': 'gm-small', text: this.t('map_hz_none_note')}));
    } else if (!any && nodata && nodata < res.risks.length) {
      parts.push(el('p', {'class': 'hz-partial', text: this.t('card_partial_note')}));
    }
    res.shelters.forEach(function (g) { parts.push(self.shelterSection(g)); });
    if (res.shelters.length) { parts.push(el('p', {'class': 'gm-small', text: this.t('map_hz_distance_note')})); }
    card.replaceChildren.apply(card, parts);
    this.placeRoute();
    card.setAttribute('data-state', 'result');
    this.app.setSheet(true, L.latLng(res.lat, res.lng));
    var sheet = document.getElementById('gm-sheet-body');
    sheet.scrollTop = Math.max(0, card.offsetTop - sheet.offsetTop - 8);  // show the card's top
  };

  /** The spec's "what to do" for the worst rank found (its per-rank text, else its general one);
   * null when the spec has none: nothing is invented. */
  Hazard.prototype.guidance = function (h, hits) {
    var g = h.guidance;
    if (!g) { return null; }
    var worst = null;
    hits.forEach(function (p) {
      if (worst === null || h.rankOrder.indexOf(p.r) > h.rankOrder.indexOf(worst)) { worst = p.r; }
    });
    var t = (worst !== null && g.byRank[worst]) || g.all;
    return t ? this.app.lab(t) : null;
  };

  /** One list of nearest shelters: names, straight distances, the in-zone caution in words, a
   * button to show each on the map and one for the walking route (when the release has one). */
  Hazard.prototype.shelterSection = function (g) {
    var self = this, kindTitle = this.kinds[g.kind] ? this.app.lab(this.kinds[g.kind].title) :
      this.lab(g.flag.title);
    var items = g.list.map(function (x) {
      var btn = el('button', {type: 'button', 'class': 'gm-btn hz-go',
        text: self.t('map_hz_show_on_map')});
      btn.addEventListener('click', function () { self.showShelter(x.f.id); });
      var warn = self.inZone(x.f, [g.kind]).map(function (e) {
        return el('span', {'class': 'hz-inzone-text', 'data-kind': e.k,
          text: self.t('card_in_zone_mark', {text: self.inZoneText(e)})});
      });
      return el('li', {'data-shelter-id': x.f.id, 'data-distance': x.d.toFixed(1),
        'data-inzone': warn.length ? 'true' : 'false'}, [
        el('span', {'class': 'hz-sh-name', text: x.f.properties.n}),
        el('span', {'class': 'hz-sh-dist', text: self.t('map_hz_shelter_distance',
          {d: self.num(Math.round(x.d), 0)})})].concat(warn, [btn]));
    });
    var kids = [el('h4', {text: this.t('map_hz_shelters_for', {hazard: this.lab(g.flag.title)})}),
      items.length ? el('ol', {}, items) : el('p', {text: this.t('map_hz_shelters_none')})];
    if (this.routeConf && items.length) {
      var rb = el('button', {type: 'button', 'class': 'gm-btn hz-route-btn', 'data-kind': g.kind,
        text: this.t('card_route_button', {kind: kindTitle})});
      rb.addEventListener('click', function () { self.askRoute(g.kind, rb); });
      kids.push(rb);
    }
    return el('section', {'class': 'hz-shelters', 'data-flag': g.flag.field, 'data-kind': g.kind},
      kids);
  };

  // ------------------------------------------------------------------ walking routes

  Hazard.prototype.routePanel = function () {
    var self = this, app = this.app, rc = this.routeConf;
    if (!this.panel) {
      this.panel = new window.GisRoute.Panel({
        map: app.map, api: rc.api, speed: rc.speed, timeoutMs: rc.timeoutMs,
        t: function (k, v) { return app.t(k, v); },
        lang: function () { return app.lang; },
        kindTitle: function (kind) {
          return self.kinds[kind] ? self.kinds[kind].title : {ja: kind, en: kind};
        },
        onClear: function () { self.routeKind = null; }
      }, this.routeBox);
    }
    return this.panel;
  };
  /** The route box goes under the list it belongs to (again after each re-render). */
  Hazard.prototype.placeRoute = function () {
    var box = this.routeBox;
    var sec = this.routeKind ? document.querySelector(
      '#hz-card section.hz-shelters[data-kind="' + this.routeKind + '"]') : null;
    if (!sec) {
      if (box.parentNode) { box.parentNode.removeChild(box); }
      return;
    }
    sec.appendChild(box);
    if (this.panel) { this.panel.render(); }
  };
  /** Walking routes from the checked spot to the nearest shelters for ``kind``. */
  Hazard.prototype.askRoute = function (kind, btn) {
    var self = this, res = this.last;
    if (!res || !this.routeConf) { return null; }
    this.routeKind = kind;
    this.placeRoute();
    var go = function () {
      if (!window.GisRoute) {  // the script itself could not be loaded (offline)
        self.routeKind = kind;
        self.routeBox.hidden = false;
        self.routeBox.replaceChildren(el('p', {'class': 'rt-error', role: 'alert',
          text: self.t('card_route_offline')}));
        return null;
      }
      var panel = self.routePanel();
      return panel.route(res.lat, res.lng, kind).then(function (answer) {
        var focus = document.activeElement;
        if (answer && (focus === btn || focus === document.body || !focus)) {
          var h = self.routeBox.querySelector('.rt-title');
          if (h) { h.focus(); }
        }
        return answer;
      });
    };
    return this.loadLibs().then(go, go);  // route.js comes with the card's libraries
  };

  Hazard.prototype.placeProbe = function (lat, lng) {
    var map = this.app.map;
    if (!this.probe) {
      this.probe = L.marker([lat, lng], {
        icon: L.divIcon({className: 'hz-probe', html: '<span></span>', iconSize: [30, 30]}),
        interactive: false, keyboard: false, zIndexOffset: 1000
      }).addTo(map);
    } else {
      this.probe.setLatLng([lat, lng]);
    }
    this.probe.getElement().setAttribute('role', 'img');
    this.probe.getElement().setAttribute('aria-label', this.t('map_hz_probe_label'));
    window.requestAnimationFrame(function () {
      map.invalidateSize({pan: false});
      map.panInside([lat, lng], {padding: [40, 40], animate: false});
    });
  };

  Hazard.prototype.showShelter = function (id) {
    var map = this.app.map;
    var m = this.markers.filter(function (x) { return x.feature.id === id; })[0];
    if (!m) { return; }
    if (!map.hasLayer(m.gmLayer.group)) { map.addLayer(m.gmLayer.group); }
    map.setView(m.getLatLng(), Math.max(map.getZoom(), DETAIL_ZOOM), {animate: false});
    this.app.picks = null;
    this.app.select({lay: m.gmLayer, props: m.feature.properties, id: m.feature.id,
      feature: m.feature, latlng: m.getLatLng()}, true);
  };

  Hazard.prototype.lang = function () {
    var self = this;
    this.markers.forEach(function (m) {
      m.setIcon(self.shelterIcon(m.gmLayer, m.feature));
      self.labelMarker(m);
    });
    if (this.probe) { this.probe.getElement().setAttribute('aria-label', this.t('map_hz_probe_label')); }
    if (this.last) { this.render(this.last); }
  };

  Hazard.prototype.lastPoint = function () {
    return this.last ? {lat: this.last.lat, lng: this.last.lng} : null;
  };

  G.behaviours.push({
    name: 'hazard',
    applies: function (cfg) { return !!cfg.hazard; },
    create: function (app) { return new Hazard(app); }
  });
})();
