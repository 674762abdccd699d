"""Every user-facing string in one place, Japanese with English.

Why one table: staff read Japanese, vendors and reviewers read English, and tests assert exact
strings. ``text(key, **kw)`` renders ``"<ja> / <en>"``; ``reason(code)`` labels quarantine codes.
"""

from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    # --- configuration / spec errors
    "spec_yaml": ("{file}: YAMLとして読めません: {detail}", "{file}: not valid YAML: {detail}"),
    "spec_invalid": (
        "{file}: キー '{key}': {detail_ja}。修正: {fix_ja}",
        "{file}: key '{key}': {detail_en}. Fix: {fix_en}",
    ),
    "spec_id_mismatch": (
        "{file}: id '{id}' がファイル名と一致しません。修正: id を '{stem}' にする",
        "{file}: id '{id}' does not match the file name. Fix: set id to '{stem}'",
    ),
    "spec_unknown_normalizer": (
        "{file}: フィールド '{field}': 正規化 '{name}' は存在しません。使えるもの: {known}",
        "{file}: field '{field}': unknown normalizer '{name}'. Known: {known}",
    ),
    "spec_unknown_codelist": (
        "{file}: フィールド '{field}': コード表 '{name}' がありません。修正: layers/codelists/{name}.yml を作る",
        "{file}: field '{field}': code list '{name}' not found. "
        "Fix: create layers/codelists/{name}.yml",
    ),
    "spec_unknown_reader": (
        "{file}: ソース '{source}': reader '{name}' は存在しません。使えるもの: {known}",
        "{file}: source '{source}': unknown reader '{name}'. Known: {known}",
    ),
    "spec_unknown_layer": (
        "{file}: '{key}' が存在しないレイヤ '{layer}' を参照しています。修正: layers/{layer}.yml を作るか名前を直す",
        "{file}: '{key}' refers to unknown layer '{layer}'. "
        "Fix: create layers/{layer}.yml or correct the name",
    ),
    "spec_bad_crs": (
        "{file}: ソース '{source}': CRS '{crs}' を解釈できません。修正: 'EPSG:30167' のように書く",
        "{file}: source '{source}': cannot parse CRS '{crs}'. Fix: write it like 'EPSG:30167'",
    ),
    "spec_cycle": (
        "レイヤの依存関係が循環しています: {layers}",
        "layer dependencies form a cycle: {layers}",
    ),
    "unknown_layer_arg": (
        "レイヤ '{layer}' はありません。使えるもの: {known}",
        "no layer '{layer}'. Known: {known}",
    ),
    "project_missing": (
        "プロジェクトが見つかりません: {dir} に {file} がありません ({how})。修正: --project でプロジェクトのフォルダを指定するか、そのフォルダで実行する (環境変数 UOZU_GIS_PROJECT も可)",
        "no project: {dir} has no {file} ({how}). Fix: name the project folder with --project, "
        "run the command inside it, or set UOZU_GIS_PROJECT",
    ),
    "sample_none": (
        "{file} に sample: がありません。このプロジェクトにはサンプルデータの生成器がありません。修正: 元データを data/raw に置く",
        "{file} has no sample: block; this project has no sample-data generator. "
        "Fix: put the source exports in the raw folder",
    ),
    "sample_missing": (
        "{file}: sample.generator のファイル {path} がありません。修正: パスを直す",
        "{file}: sample.generator file {path} not found. Fix: correct the path",
    ),
    "sample_no_generate": (
        "{path} に generate(out_dir, *, scale, seed, progress) 関数がありません",
        "{path} defines no generate(out_dir, *, scale, seed, progress) function",
    ),
    "no_specs": (
        "{dir} にレイヤ定義 (*.yml) がありません",
        "no layer specs (*.yml) in {dir}",
    ),
    # --- source / data errors
    "source_missing": (
        "レイヤ '{layer}': ファイル {file} がありません。修正: data/raw に置くか 'uozu-gis sample' を実行",
        "layer '{layer}': file {file} not found. Fix: put it in the raw folder or run "
        "'uozu-gis sample'",
    ),
    "source_unreadable": (
        "レイヤ '{layer}': ファイル {file} を読めません ({detail})。修正: 元システムから再出力する",
        "layer '{layer}': cannot read {file} ({detail}). Fix: export it again from the source system",
    ),
    "source_truncated": (
        "レイヤ '{layer}': {file} が途中で切れています ({detail})。修正: 元システムから再出力する",
        "layer '{layer}': {file} is truncated ({detail}). Fix: export it again from the source "
        "system",
    ),
    "source_missing_part": (
        "レイヤ '{layer}': {file} の {part} がありません。修正: .shp/.shx/.dbf をそろえて置く",
        "layer '{layer}': {file} is missing its {part}. Fix: copy .shp, .shx and .dbf together",
    ),
    "source_encoding": (
        "レイヤ '{layer}': {file} を {encoding} で読むと文字化けします ({detail})。"
        "修正: ソースの encoding を直す (例: cp932 / utf-8)",
        "layer '{layer}': {file} does not decode as {encoding} ({detail}). "
        "Fix: set the source's encoding (e.g. cp932 / utf-8)",
    ),
    "source_no_crs": (
        "レイヤ '{layer}': {file} に座標系 (.prj) がありません。修正: layers/{layer}.yml のソースに crs: を書く",
        "layer '{layer}': {file} has no CRS (.prj missing). "
        "Fix: set crs: on the source in layers/{layer}.yml",
    ),
    "source_crs_conflict": (
        "レイヤ '{layer}': {file} の .prj は {file_crs} ですが定義は {spec_crs} です。"
        "修正: どちらが正しいか確認し、定義を正とするなら crs_override: true",
        "layer '{layer}': {file} says {file_crs} but the spec says {spec_crs}. "
        "Fix: check which is right; to trust the spec set crs_override: true",
    ),
    "source_missing_field": (
        "レイヤ '{layer}': {file} に列 {fields} がありません (あるのは {have})。"
        "修正: layers/{layer}.yml の from: / rename: を直す",
        "layer '{layer}': {file} has no column(s) {fields} (it has {have}). "
        "Fix: correct from:/rename: in layers/{layer}.yml",
    ),
    "source_geom_missing": (
        "レイヤ '{layer}': {file} に図形がありません。修正: 図形付きで出力するか x_field/y_field を指定",
        "layer '{layer}': {file} has no geometry. Fix: export with geometry or set x_field/y_field",
    ),
    "crs_swapped": (
        "レイヤ '{layer}': {file} は X/Y (北/東) が入れ替わっているようです (入替えると{inside}%が市域内)。"
        "修正: ソースに axis_order: yx を書く",
        "layer '{layer}': {file} looks like X/Y (northing/easting) are swapped ({inside}% fall in the "
        "city when swapped). Fix: set axis_order: yx on the source",
    ),
    "crs_outside": (
        "レイヤ '{layer}': {file} の図形の{outside}%が市域外です (座標系 {crs})。"
        "修正: ソースの crs: を確認する",
        "layer '{layer}': {outside}% of {file} lies outside the city (CRS {crs}). "
        "Fix: check the source's crs:",
    ),
    "crs_tokyo_suspect": (
        "レイヤ '{layer}': {file} は {crs} と宣言されていますが、旧日本測地系 (約435 m のずれ) のようです "
        "(参照レイヤ '{reference}' との距離の中央値 {as_is:.1f} m → 補正すると {fixed:.1f} m)。"
        "修正: ソースの crs: を EPSG:30167 (旧日本測地系 VII系) にする",
        "layer '{layer}': {file} is declared {crs} but looks like Tokyo datum (~435 m shift: median "
        "distance to '{reference}' {as_is:.1f} m, {fixed:.1f} m once shifted). "
        "Fix: set the source's crs: to EPSG:30167 (Tokyo datum zone VII)",
    ),
    "grid_missing": (
        "変換グリッド {grid} がありません。修正: {dir} に置く (出典: 国土地理院)",
        "datum grid {grid} not found. Fix: put it in {dir} (source: GSI)",
    ),
    "grid_outside": (
        "レイヤ '{layer}': {file} の {n} 件がグリッド {grid} の範囲外で変換できません",
        "layer '{layer}': {n} record(s) of {file} fall outside grid {grid} and cannot be transformed",
    ),
    "join_layer_failed": (
        "レイヤ '{layer}': 結合先レイヤ '{other}' が失敗したため処理できません",
        "layer '{layer}': cannot run because the layer it joins, '{other}', failed",
    ),
    "run_failed": (
        "マージは失敗しました。前回のマスタは変更されていません。",
        "the merge failed; the previous master is unchanged.",
    ),
    "no_master": (
        "マスタがありません。修正: 先に 'uozu-gis merge' を実行",
        "no master yet. Fix: run 'uozu-gis merge' first",
    ),
    "no_run": (
        "実行 '{run}' の保存データがありません。保存されている実行: {known}",
        "no stored data for run '{run}'. Stored runs: {known}",
    ),
    # --- stores (GeoPackage default, PostGIS server)
    "store_unknown": (
        "保存先 '{store}' は使えません。使えるもの: gpkg または postgresql://ユーザー@ホスト:ポート/DB名",
        "unknown store '{store}'. Use gpkg or postgresql://user@host:port/dbname",
    ),
    "store_password_in_file": (
        "{file}: store にパスワードが書かれています。設定ファイルに認証情報を置かないでください。"
        "修正: URL からパスワードを消し、PGPASSWORD か ~/.pgpass、または環境変数 "
        "UOZU_GIS_STORE / --store で渡す",
        "{file}: the store URL contains a password; credentials must not be in config files. "
        "Fix: remove it from the URL and use PGPASSWORD or ~/.pgpass, or pass the URL through "
        "UOZU_GIS_STORE / --store",
    ),
    "store_unreachable": (
        "PostGIS {store} に接続できません: {detail}。修正: URL・サーバーの起動・"
        "PGPASSWORD/~/.pgpass を確認",
        "cannot connect to PostGIS {store}: {detail}. Fix: check the URL, that the server is "
        "running, and PGPASSWORD/~/.pgpass",
    ),
    "store_no_postgis": (
        "データベース {store} に PostGIS 拡張がありません。修正: 管理者が "
        "'CREATE EXTENSION postgis;' を実行",
        "database {store} has no PostGIS extension. Fix: have an administrator run "
        "'CREATE EXTENSION postgis;'",
    ),
    "store_bad_identifier": (
        "postgis.{key} '{value}' は PostgreSQL の名前として使えません。修正: 英小文字・数字・_ "
        "(先頭は英字, 40文字まで)",
        "postgis.{key} '{value}' is not a usable PostgreSQL name. Fix: lower-case letters, "
        "digits and _ (starting with a letter, at most 40 characters)",
    ),
    "pg_reader_missing": (
        "公開用の読取ロール '{role}' がなく、作成もできません ({detail})。修正: 管理者が "
        "'CREATE ROLE {role} LOGIN;' を実行 (パスワードは ~/.pgpass に)",
        "the public reader role '{role}' does not exist and cannot be created ({detail}). "
        "Fix: have an administrator run 'CREATE ROLE {role} LOGIN;' (password in ~/.pgpass)",
    ),
    "pg_publish_failed": (
        "PostGIS 公開ストアへの書込みに失敗しました (レイヤ '{layer}'): {detail}",
        "writing the PostGIS public store failed (layer '{layer}'): {detail}",
    ),
    "store_write_failed": (
        "PostGIS への書込みに失敗しました (レイヤ '{layer}'): {detail}",
        "writing to PostGIS failed (layer '{layer}'): {detail}",
    ),
    "conservation": (
        "レイヤ '{layer}': 件数が合いません (読込 {read} ≠ 統合 {merged} + 隔離 {quarantined})",
        "layer '{layer}': counts do not add up (read {read} != merged {merged} + "
        "quarantined {quarantined})",
    ),
    # --- progress / results
    "stage_read": ("読込", "read"),
    "stage_normalize": ("正規化", "normalize"),
    "stage_transform": ("座標変換", "transform"),
    "stage_validate": ("検証", "validate"),
    "stage_write": ("書込", "write"),
    "merge_done": (
        "マージ完了: 実行 {run} — {layers} レイヤ, 統合 {merged} 件, 隔離 {quarantined} 件 ({seconds:.1f} 秒)",
        "merge done: run {run} — {layers} layers, {merged} merged, {quarantined} quarantined "
        "({seconds:.1f} s)",
    ),
    "validate_ok": ("検証 OK: {layers} レイヤ, {read} 件読込 (書込なし)", "validation OK: {layers} "
                    "layers, {read} records read (nothing written)"),
    "rollback_done": ("実行 {run} のマスタに戻しました", "rolled back the master to run {run}"),
    "sample_done": ("サンプルデータを {dir} に作成しました", "sample data written to {dir}"),
    "report_written": ("QAレポート: {path}", "QA report: {path}"),
    # ---------------------------------------------------------------- publication (publish/)
    # --- errors (the user's fault: exit code 1, nothing published)
    "publish_no_master": (
        "マスタ {path} がありません。修正: 先に 'uozu-gis merge' を実行",
        "no master at {path}. Fix: run 'uozu-gis merge' first",
    ),
    "manifest_invalid": (
        "マスタのマニフェスト {path} を読めません ({detail})。修正: 'uozu-gis merge' をやり直す",
        "cannot read the master's manifest {path} ({detail}). Fix: run 'uozu-gis merge' again",
    ),
    "no_public_layers": (
        "公開レイヤがありません。修正: layers/*.yml のどれかに visibility: public を書く",
        "there are no public layers. Fix: set visibility: public in one of layers/*.yml",
    ),
    "master_layer_missing": (
        "レイヤ '{layer}' がマスタ {path} にありません。修正: 'uozu-gis merge' を実行",
        "layer '{layer}' is not in the master {path}. Fix: run 'uozu-gis merge'",
    ),
    "master_columns_missing": (
        "レイヤ '{layer}': マスタに公開列 {columns} がありません。修正: 定義変更後に 'uozu-gis merge' を"
        "やり直す",
        "layer '{layer}': the master lacks public column(s) {columns}. Fix: run 'uozu-gis merge' "
        "again after changing the spec",
    ),
    "public_filter_unknown": (
        "レイヤ '{layer}': public_filter '{expr}' が定義にない名前 {names} を使っています。"
        "使える列: {known}",
        "layer '{layer}': public_filter '{expr}' uses name(s) {names} that are not spec fields. "
        "Known columns: {known}",
    ),
    "public_filter_invalid": (
        "レイヤ '{layer}': public_filter '{expr}' を評価できません ({detail})。"
        "修正: pandas の query 式で書く (例: status == \"in_use\")",
        "layer '{layer}': cannot evaluate public_filter '{expr}' ({detail}). "
        "Fix: write a pandas query expression (e.g. status == \"in_use\")",
    ),
    "public_id_missing": (
        "レイヤ '{layer}': 公開する {n} 件で ID ({field}) が空です。修正: {field} を required: true に"
        "してマージをやり直す",
        "layer '{layer}': {n} public record(s) have no id ({field}). Fix: make {field} "
        "required: true and merge again",
    ),
    "public_id_duplicate": (
        "レイヤ '{layer}': ID ({field}) が重複しています: {examples}。修正: {field} を unique: true に"
        "してマージをやり直す",
        "layer '{layer}': duplicate id(s) in {field}: {examples}. Fix: make {field} unique: true "
        "and merge again",
    ),
    "public_id_internal": (
        "レイヤ '{layer}': id_field '{field}' が非公開項目です。公開 ID に使えません。"
        "修正: {field} を visibility: public にするか、公開できる項目を id_field にする",
        "layer '{layer}': id_field '{field}' is internal, so it cannot be the public id. "
        "Fix: make {field} visibility: public or choose a public id_field",
    ),
    "label_column_conflict": (
        "レイヤ '{layer}': コード表の名称列 '{column}' が既存の列と衝突します。修正: フィールド名を変える",
        "layer '{layer}': code-list label column '{column}' clashes with a field. "
        "Fix: rename the field",
    ),
    "reserved_column": (
        "レイヤ '{layer}': 列名 '{column}' は公開ストアで予約されています。修正: フィールド名を変える",
        "layer '{layer}': column name '{column}' is reserved in the public store. "
        "Fix: rename the field",
    ),
    "publish_crs_unsupported": (
        "publish_crs '{crs}' には対応していません。公開ストアは常に CRS84 (経度・緯度) です。"
        "修正: config/project.yml の publish_crs を OGC:CRS84 にする (EPSG:6675 などは API の ?crs= で"
        "出力できます)",
        "publish_crs '{crs}' is not supported: the public store is always CRS84 (lon/lat). "
        "Fix: set publish_crs: OGC:CRS84 in config/project.yml (EPSG:6675 and others are offered "
        "as output CRSs through the API's ?crs=)",
    ),
    "leak_check_failed": (
        "公開ストアの自己検査に失敗しました ({path}): {detail}。公開は中止し、現在の公開版は変更していません",
        "the public store failed its self-check ({path}): {detail}. Publication aborted; the "
        "current release is unchanged",
    ),
    "pygeoapi_config_invalid": (
        "pygeoapi 設定の検証に失敗しました: {detail}。修正: config/project.yml の publish: と"
        "レイヤ定義の title/attribution を確認",
        "the pygeoapi configuration is invalid: {detail}. Fix: check publish: in "
        "config/project.yml and the layers' title/attribution",
    ),
    "openapi_failed": (
        "OpenAPI 文書を生成できません (コレクション '{collection}'): {detail}",
        "cannot generate the OpenAPI document (collection '{collection}'): {detail}",
    ),
    "publish_locked": (
        "別の公開処理が実行中です ({lock})。終わってから再実行してください",
        "another publish is running ({lock}). Run again when it has finished",
    ),
    "publish_failed": (
        "公開に失敗しました。現在の公開版 ({current}) は変更していません",
        "publication failed; the current release ({current}) is unchanged",
    ),
    "no_release": (
        "公開版がありません ({dir})。修正: 先に 'uozu-gis publish' を実行",
        "nothing has been published yet ({dir}). Fix: run 'uozu-gis publish' first",
    ),
    "base_url_invalid": (
        "base_url '{url}' は http(s)://ホスト[:ポート][/パス] の形で書いてください",
        "base_url '{url}' must look like http(s)://host[:port][/path]",
    ),
    # --- progress / results
    "publish_stage_read": ("マスタ読込", "read master"),
    "stage_store": ("公開ストア書込", "write public store"),
    "stage_check": ("漏えい自己検査", "leak self-check"),
    "stage_config": ("pygeoapi 設定", "pygeoapi config"),
    "stage_openapi": ("OpenAPI 生成", "OpenAPI document"),
    "stage_site": ("サイト作成", "site pages"),
    "stage_switch": ("公開版の切替", "switch release"),
    "publish_done": (
        "公開完了: 公開版 {release} — {layers} レイヤ, {features} 件 ({seconds:.1f} 秒)",
        "published: release {release} — {layers} layers, {features} features ({seconds:.1f} s)",
    ),
    "serve_start": (
        "公開サーバ起動: {url} (ワーカー {workers})",
        "public server listening on {url} ({workers} workers)",
    ),
    "serve_url_mismatch": (
        "注意: base_url {base_url} と待受 {bind} が異なります。API のリンクは base_url を指します",
        "note: base_url {base_url} differs from the bind address {bind}; API links use base_url",
    ),
    # --- pygeoapi metadata and collection text
    "data_as_of": ("{date} 時点", "as of {date}"),
    "data_date_unknown": ("データ時点 不明", "data date unknown"),
    "link_source": ("出典: {source}", "Source: {source}"),
    "link_license": ("ライセンス: {license}", "License: {license}"),
    "link_terms": ("利用規約", "Terms of use"),
    "service_terms": (
        "参考図です。利用規約 {url} をご確認ください。",
        "Reference map only. See the terms of use at {url}.",
    ),
    "label_suffix_ja": ("{title} (日本語名)", "{title} (Japanese name)"),
    "label_suffix_en": ("{title} (英語名)", "{title} (English name)"),
    "public_id": ("公開ID", "public id"),
    "err_not_queryable": (
        "'{name}' では絞り込みできません。使える項目: {known}",
        "'{name}' is not queryable. Queryables: {known}",
    ),
    "err_bad_value": (
        "'{name}' の値 '{value}' は {type} ではありません",
        "value '{value}' of '{name}' is not a valid {type}",
    ),
    "err_no_cql": (
        "この API は filter (CQL) に対応していません。項目名=値 で絞り込んでください",
        "this API does not support filter (CQL); use property=value filters",
    ),
    "err_bad_filter": (
        "filter を実行できません ({detail})。例: diameter_mm > 150 AND material = 'DIP'",
        "cannot run this filter ({detail}). Example: diameter_mm > 150 AND material = 'DIP'",
    ),
    "err_no_q": (
        "この API は全文検索 (q) に対応していません。項目名=値 で絞り込んでください",
        "this API does not support full-text search (q); use property=value filters",
    ),
    "err_method": (
        "この公開 API は読み取り専用です",
        "this public API is read-only",
    ),
    "err_not_found": ("ページがありません", "page not found"),
    # --- landing / terms pages
    "page_title": ("{title}", "{title}"),
    "page_api": ("データ API (OGC API - Features)", "Data API (OGC API - Features)"),
    "page_api_text": (
        "GIS ソフト (QGIS など) やプログラムから公開データを取得できます。",
        "Fetch the public data from GIS software (e.g. QGIS) or programs.",
    ),
    "page_api_openapi": ("API 仕様 (OpenAPI)", "API definition (OpenAPI)"),
    "page_collections": ("データ一覧", "Collections"),
    "page_maps": ("地図", "Maps"),
    "page_no_maps": ("公開中の地図はまだありません。", "No maps are published yet."),
    "page_layers": ("公開データ", "Public data"),
    "page_layer": ("データ", "Data"),
    "page_features": ("件数", "Features"),
    "page_data_date": ("データ時点", "Data as of"),
    "page_source": ("出典", "Source"),
    "page_license": ("ライセンス", "License"),
    "page_release": ("公開版", "Release"),
    "page_published_at": ("公開日時", "Published at"),
    "page_terms": ("利用規約", "Terms of use"),
    "page_terms_version": ("第{version}版", "version {version}"),
    "page_contact": ("問い合わせ先", "Contact"),
    "page_home": ("トップ", "Home"),
    "page_reference_notice": (
        "この地図・データは参考図です。正確な位置や権利関係は必ず担当課でご確認ください。",
        "These maps and data are for reference only. Always confirm exact positions and legal "
        "matters with the responsible section.",
    ),
    "terms_1": (
        "本サービスで提供する地図およびデータは参考図です。測量の成果ではなく、現地の状況、"
        "位置の正確さ、境界などの権利関係を保証するものではありません。",
        "The maps and data provided by this service are reference maps. They are not survey "
        "results and do not guarantee site conditions, positional accuracy or legal boundaries.",
    ),
    "terms_2": (
        "工事、売買、申請など正確さが必要な目的には使わず、必ず担当課で原本 (台帳) を確認してください。",
        "Do not rely on them for construction, transactions, applications or other purposes that "
        "need accuracy; always check the official ledgers with the responsible section.",
    ),
    "terms_3": (
        "データには時点があります。各データの「データ時点」以降の変更は反映されていません。",
        "Data have a reference date. Changes after each data set's \"as of\" date are not "
        "reflected.",
    ),
    "terms_4": (
        "データは下記のライセンスで利用できます。利用する際は出典を表示してください。",
        "The data may be used under the licences below. Show the source when you use them.",
    ),
    "terms_5": (
        "本サービスの利用により生じた損害について、市は責任を負いません。"
        "サービスは予告なく変更・停止することがあります。",
        "The city accepts no liability for any damage arising from the use of this service. The "
        "service may change or stop without notice.",
    ),
    "terms_6": (
        "本サービスは個人情報を公開しません。公開データは公開を許可された項目だけから作成しています。",
        "This service publishes no personal information. The public data are built only from "
        "fields approved for publication.",
    ),
}

REASONS: dict[str, tuple[str, str]] = {
    "NULL_GEOMETRY": ("図形なし", "geometry is null"),
    "EMPTY_GEOMETRY": ("空の図形", "geometry is empty"),
    "INVALID_GEOMETRY": ("修復できない不正な図形", "invalid geometry that could not be repaired"),
    "GEOMETRY_TYPE": ("図形の種類が違う", "wrong geometry type for the layer"),
    "OUTSIDE_BOUNDARY": ("市域外", "outside the city boundary"),
    "TRANSFORM_FAILED": ("座標変換できない", "coordinate transformation failed"),
    "MISSING_REQUIRED": ("必須項目が空", "a required field is empty"),
    "BAD_VALUE": ("値を解釈できない", "value cannot be parsed as the field type"),
    "OUT_OF_RANGE": ("値が範囲外", "value out of the allowed range"),
    "UNKNOWN_CODE": ("コード表にないコード", "code not in the code list"),
    "DUPLICATE_ID": ("IDの重複", "duplicate id"),
    "MISSING_REFERENCE": ("参照先がない", "referenced feature does not exist"),
    "FAR_FROM_REFERENCE": ("参照先から離れている", "too far from the referenced feature"),
    "JOIN_UNMATCHED": ("結合先がない", "no matching feature to join"),
    "TOO_SMALL": ("面積が小さすぎる", "area below the minimum"),
}


def text(msg_key: str, /, **kw: object) -> str:
    """Render message ``msg_key`` as ``"<ja> / <en>"``."""
    ja, en = MESSAGES[msg_key]
    return f"{ja.format(**kw)} / {en.format(**kw)}"


def ja(msg_key: str, /, **kw: object) -> str:
    return MESSAGES[msg_key][0].format(**kw)


def en(msg_key: str, /, **kw: object) -> str:
    return MESSAGES[msg_key][1].format(**kw)


def both(msg_key: str, /, **kw: object) -> dict[str, str]:
    """``{"ja": ..., "en": ...}``: the language-dict form pygeoapi's config accepts."""
    return {"ja": ja(msg_key, **kw), "en": en(msg_key, **kw)}


def reason(code: str) -> str:
    """Bilingual label of a quarantine reason code."""
    j, e = REASONS[code]
    return f"{j} / {e}"
