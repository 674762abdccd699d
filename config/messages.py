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
    "target_crs_not_metric": (
        "{file}: target_crs '{crs}' は{detail_ja}。許容差や余白 (tolerance_m, margin_m など) は"
        "この座標系のメートルで測ります。修正: 市の平面直角座標系など、メートル単位の投影座標系を "
        "EPSG 番号で書く",
        "{file}: target_crs '{crs}' {detail_en}; tolerances and margins (tolerance_m, "
        "margin_m ...) are metres of this CRS. Fix: give a projected CRS in metres, such as the "
        "city's plane rectangular zone, by its EPSG code",
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
        "{file}: ソース '{source}': CRS '{crs}' を解釈できません。修正: 'EPSG:6668' のように EPSG 番号で書く",
        "{file}: source '{source}': cannot parse CRS '{crs}'. Fix: give its EPSG code, like "
        "'EPSG:6668'",
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
        "レイヤ '{layer}': ファイル {file} がありません。修正: 元システムから出力して {raw} に置く",
        "layer '{layer}': file {file} not found. Fix: export it from the source system into "
        "{raw}",
    ),
    "source_missing_sample": (
        "レイヤ '{layer}': ファイル {file} がありません。修正: 元システムから出力して {raw} に置くか、"
        "サンプルデータを 'uozu-gis sample' で作る",
        "layer '{layer}': file {file} not found. Fix: export it from the source system into "
        "{raw}, or write the project's sample data with 'uozu-gis sample'",
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
        "レイヤ '{layer}': {file} は座標の軸 (X/Y, 緯度/経度) が入れ替わっています: 元の座標のまま"
        "では {outside}/{n} 点が{where_ja}の外、入れ替えると {inside}/{n} 点が市域内です (座標系 {crs})。"
        "修正: ソースに axis_order: yx を書く",
        "layer '{layer}': {file} has its axes (X/Y, lat/lon) swapped: {outside}/{n} points fall "
        "outside {where_en}; swapped, {inside}/{n} fall inside the boundary (CRS {crs}). "
        "Fix: set axis_order: yx on the source",
    ),
    "crs_outside": (
        "レイヤ '{layer}': {file} の {outside}/{n} 点が{where_ja}の外です (座標系 {crs}; 軸を入れ替えても"
        " {inside}/{n} 点)。修正: ソースの crs: (系番号・測地系) を確認する",
        "layer '{layer}': {outside}/{n} points of {file} fall outside {where_en} (CRS {crs}; "
        "{inside}/{n} inside with swapped axes). Fix: check the source's crs: (zone and datum)",
    ),
    "crs_tokyo_suspect": (
        "レイヤ '{layer}': {file} は {crs} と宣言されていますが、旧日本測地系 (約435 m のずれ) のようです "
        "(参照レイヤ '{reference}' との距離の中央値 {as_is:.1f} m → 補正すると {fixed:.1f} m)。"
        "修正: ソースの crs: を {tokyo} (旧日本測地系の同じ系) にする",
        "layer '{layer}': {file} is declared {crs} but looks like Tokyo datum (~435 m shift: median "
        "distance to '{reference}' {as_is:.1f} m, {fixed:.1f} m once shifted). "
        "Fix: set the source's crs: to {tokyo} (Tokyo datum, same zone)",
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
    "validate_failed": (
        "検証で問題が見つかりました (何も書き込んでいません)。上の修正をしてから merge してください。",
        "validation found problems (nothing was written); fix them before merging.",
    ),
    # --- etl: layers merged in parallel processes (issue 17)
    "merge_worker_died": (
        "レイヤ '{layer}' を処理していたプロセスが異常終了しました (終了コード {code}: メモリ不足や"
        "強制終了など)。実行を中止し、前回のマスタは変更されていません。修正: メモリを確認するか "
        "--jobs 1 で再実行する",
        "the process merging layer '{layer}' ended abnormally (exit code {code}: out of memory, "
        "killed, ...); the run was stopped and the previous master is unchanged. Fix: check the "
        "memory or run again with --jobs 1",
    ),
    "opt_jobs": (
        "同時に処理するレイヤ数 (別プロセス)。既定: 環境変数 UOZU_GIS_JOBS、なければ 2 (1コアなら 1)",
        "layers merged at once, each in its own process (default: $UOZU_GIS_JOBS, else 2; 1 on "
        "a one-core machine)",
    ),
    # --- etl: identity of YAML, sources, datum grids, budgets (issue 13/18)
    "spec_bool_key": (
        "{file}: {line}行目: キー {key} は YAML では真偽値 {value} と読まれます。"
        "修正: 引用符で囲む (\"{key}\":)",
        "{file}: line {line}: key {key} is read by YAML as the boolean {value}. "
        "Fix: quote it (\"{key}\":)",
    ),
    "spec_duplicate_key": (
        "{file}: {line}行目: キー '{key}' が重複しています ({first}行目と同じ。後の方が前の方を黙って上書き"
        "します)。修正: 1つにまとめる",
        "{file}: line {line}: key '{key}' is repeated (first on line {first}; the later one would "
        "silently replace it). Fix: keep one",
    ),
    "codelist_alias_conflict": (
        "{file}: 表記 '{alias}' がコード '{first}' と '{second}' の両方に使われています。"
        "修正: どちらか一方にだけ書く",
        "{file}: spelling '{alias}' is claimed by both code '{first}' and code '{second}'. "
        "Fix: keep it under one code",
    ),
    "spec_unknown_correction": (
        "{file}: ソース '{source}': 座標補正 '{name}' は config/project.yml の corrections: に"
        "ありません (あるもの: {known})",
        "{file}: source '{source}': correction '{name}' is not in corrections: of "
        "config/project.yml (known: {known})",
    ),
    "spec_data_date_header": (
        "{file}: ソース '{source}': data_date: dbf_header は Shapefile (DBF) だけで使えます。"
        "修正: 日付か {{field: 列名}} を書く",
        "{file}: source '{source}': data_date: dbf_header works only for Shapefiles (DBF). "
        "Fix: give a date or {{field: column}}",
    ),
    "source_outside_raw": (
        "レイヤ '{layer}': ソースのパス {file} は元データフォルダ {raw} の外 ({target}) を指しています。"
        "修正: ファイルを元データフォルダに置き、そこからの相対パスを書く",
        "layer '{layer}': source path {file} leads outside the raw folder {raw} ({target}). "
        "Fix: put the file inside the raw folder and give its path relative to it",
    ),
    "source_indirect": (
        "レイヤ '{layer}': {file} は {kind} で、中に書かれた別のデータ ({target}) を読みます。"
        "元データフォルダ {raw} の外まで読めてしまうため使えません。"
        "修正: データそのもの (GeoPackage、Shapefile、CSV など) を元データフォルダに出力し、"
        "path: にそのファイルを書く",
        "layer '{layer}': {file} is a {kind}, which reads other data named inside it "
        "({target}) and so could read outside the raw folder {raw}; it is refused. Fix: export "
        "the data itself (GeoPackage, Shapefile, CSV ...) into the raw folder and set path: to "
        "that file",
    ),
    "source_not_a_file": (
        "レイヤ '{layer}': ソースのパス {file} は GDAL の接続文字列か仮想ファイルシステム (/vsi...) "
        "のパスで、元データフォルダ {raw} のファイルではありません。"
        "修正: データを元データフォルダに出力し、そこからの相対パスを書く",
        "layer '{layer}': source path {file} is a GDAL connection string or virtual file "
        "system (/vsi...) path, not a file in the raw folder {raw}. Fix: export the data into "
        "the raw folder and give its path relative to it",
    ),
    "source_parts_disagree": (
        "レイヤ '{layer}': {file} の部品の件数が合いません: .shp/.shx の図形 {shapes} 件、.dbf の属性 {records} 件。"
        "修正: .shp/.shx/.dbf を同じ出力からそろえて置く",
        "layer '{layer}': the parts of {file} disagree: .shp/.shx hold {shapes} shapes, .dbf holds "
        "{records} records. Fix: copy .shp, .shx and .dbf of one export together",
    ),
    "source_encoding_wrong": (
        "レイヤ '{layer}': {file} は encoding {declared} と指定されていますが、実際は {actual} です"
        " ({evidence})。修正: ソースに encoding: {fix} を書く",
        "layer '{layer}': {file} is declared {declared} but it is {actual} ({evidence}). "
        "Fix: set encoding: {fix} on the source",
    ),
    "source_encoding_undeclared": (
        "レイヤ '{layer}': {file} の文字コードが指定されていません (内容は {actual})。"
        "修正: ソースに encoding: {fix} を書く",
        "layer '{layer}': {file} has no declared encoding (its text is {actual}). "
        "Fix: set encoding: {fix} on the source",
    ),
    "source_empty": (
        "レイヤ '{layer}': {file} にレコードがありません ({what}) が、前回の実行 {run} では {previous} 件"
        "ありました。前回のマスタは変更しません。修正: 出力をやり直す。本当に空ならソースに "
        "allow_empty: true を書く",
        "layer '{layer}': {file} yields no records ({what}) but the previous run {run} had "
        "{previous}. Fix: export it again; if it really is empty now, set allow_empty: true on "
        "the source",
    ),
    "source_dimensions": (
        "レイヤ '{layer}': {file} の {n} 件の図形に {dims} 値があります。マスタは X/Y だけを保存します。"
        "修正: 捨ててよければソースに drop_dimensions: [{keys}] を書く (件数は報告されます)。"
        "必要なら {dims} を属性列にして出力する",
        "layer '{layer}': {n} geometries of {file} carry {dims} values; the master stores X/Y "
        "only. Fix: set drop_dimensions: [{keys}] on the source to drop them (the count is "
        "reported), or export {dims} as an attribute column if it is needed",
    ),
    "quarantine_budget": (
        "レイヤ '{layer}': {read} 件中 {quarantined} 件 ({pct}%) が隔離されます。許容 {limit} 件 "
        "(max_quarantine: share {share}, count {count}) を超えるためこのレイヤは失敗です。"
        "主な理由: {reasons_ja}。修正: {fix_ja}",
        "layer '{layer}': {quarantined} of {read} records ({pct}%) would be quarantined, above "
        "the budget of {limit} (max_quarantine: share {share}, count {count}), so the layer "
        "fails. Top reasons: {reasons_en}. Fix: {fix_en}",
    ),
    "budget_fix": (
        "理由を直す (元データか layers/{layer}.yml)。これらを除外してよいと確認できた場合だけ "
        "max_quarantine を上げる",
        "correct what the reasons say (the export or layers/{layer}.yml); raise max_quarantine "
        "only once these records are known to be expendable",
    ),
    # --- environment faults (disk, permissions, locks, a database that went away)
    "env_disk_full": (
        "{path} に書き込めません: ディスクがいっぱいです。修正: 空き容量を作ってから再実行する",
        "cannot write {path}: the disk is full. Fix: free disk space and run again",
    ),
    "env_permission": (
        "{path} に書き込めません: 権限がありません。修正: このユーザーに書込み権限を与えるか、"
        "書き込めるフォルダを設定する",
        "cannot write {path}: permission denied. Fix: give this user write permission or "
        "configure a folder it may write",
    ),
    "env_read_only": (
        "{path} に書き込めません: 読取専用のファイルシステムです。修正: 書き込めるフォルダを設定する "
        "(config/project.yml の {setting})",
        "cannot write {path}: the file system is read-only. Fix: configure a writable folder "
        "({setting} in config/project.yml)",
    ),
    "env_locked": (
        "{path} は別のプログラムが使用中 (ロック中) です。修正: それ (QGIS など) を閉じてから再実行する",
        "{path} is locked by another program. Fix: close it (e.g. QGIS) and run again",
    ),
    "env_io": (
        "{path} の読み書きに失敗しました ({detail})。修正: ディスクとファイルを確認して再実行する",
        "reading or writing {path} failed ({detail}). Fix: check the disk and the file, then run "
        "again",
    ),
    "store_lost": (
        "PostGIS {store} との接続が途中で切れました ({detail})。何も確定していません。"
        "修正: サーバーの状態を確認して再実行する",
        "the connection to PostGIS {store} was lost ({detail}); nothing was committed. "
        "Fix: check the server and run again",
    ),
    "store_server_full": (
        "PostGIS {store} のディスクがいっぱいです ({detail})。何も確定していません。"
        "修正: データベースサーバーの空き容量を作ってから再実行する",
        "the disk of PostGIS {store} is full ({detail}); nothing was committed. Fix: free disk "
        "space on the database server and run again",
    ),
    # --- warnings in the QA report (the record is kept)
    "warn_source_empty": (
        "{file}: レコードがありません ({what})",
        "{file}: no records ({what})",
    ),
    "warn_dims_dropped": (
        "{file}: {n} 件の図形の {dims} 値を捨てました (drop_dimensions)",
        "{file}: {dims} values of {n} geometries dropped (drop_dimensions)",
    ),
    "warn_zero_z": (
        "{file}: Z 値はすべて 0 か空のため捨てました ({n} 件)",
        "{file}: Z values are all 0 or empty and were dropped ({n} geometries)",
    ),
    "warn_data_date_unknown": (
        "{file}: データ時点が不明です。修正: ソースに data_date: を書く",
        "{file}: the data date is unknown. Fix: set data_date: on the source",
    ),
    "warn_vertex_budget": (
        "{n} 件の図形が公開用の頂点数上限 {max} を超えます。公開時に簡略化されます "
        "(許容誤差 {tol} m から)。マスタは元のまま",
        "{n} features exceed the publication vertex budget of {max}; publication simplifies "
        "them (from a tolerance of {tol} m); the master keeps them exact",
    ),
    "warn_mixed_epochs": (
        "ソースの座標の元期が混在しています: {epochs}",
        "the sources are on different coordinate epochs: {epochs}",
    ),
    "warn_reader": ("{file}: 読込時の警告: {detail}", "{file}: warning while reading: {detail}"),
    "warn_text_width": (
        "{file}: 列 {column} の {n} 件の値が DBF の項目幅 {width} バイトいっぱいです。"
        "出力時に切れていないか確認する",
        "{file}: {n} value(s) of {column} fill the DBF field width of {width} bytes; check that "
        "the export did not cut them",
    ),
    "warn_previous_unknown": (
        "前回の実行を読めません ({detail})。空のソースの確認は前回の件数なしで行いました",
        "cannot read the previous run ({detail}); empty sources were checked without it",
    ),
    "warning": ("警告", "warning"),
    "summary_reasons": ("主な隔離理由", "top quarantine reasons"),
    "summary_grids": ("座標変換グリッドの適用範囲", "datum grid coverage"),
    "summary_points": ("{covered}/{points} 点", "{covered}/{points} points"),
    "summary_warnings": ("警告", "warnings"),
    "grid_outside_unchanged": (
        "{grid} の範囲外: 変換せず", "outside {grid}: unchanged",
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
        "PostGIS {store} の公開ストアへの書込みに失敗しました (レイヤ '{layer}'): {detail}。"
        "修正: サーバーのログと接続ユーザーの権限を確認して再実行する",
        "writing the PostGIS public store on {store} failed (layer '{layer}'): {detail}. "
        "Fix: check the server's log and the connecting user's rights, then run again",
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
    "inline_script_unsafe": (
        "{path} をページの <script> に埋め込めません: '</' を含みます (そこでスクリプトが閉じる)。"
        "修正: 文字列の中の '</' を '<\\/' と書く",
        "{path} cannot be inlined in a page's <script>: it contains '</' (which would close the "
        "script). Fix: write '</' inside strings as '<\\/'",
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
        "レイヤ '{layer}': ID ({field}) が重複しています: {examples}。修正: {field} に unique: true "
        "がなければ書いてマージをやり直す (マージは前後の空白を除いた ID の重複を DUPLICATE_ID "
        "として隔離します)。書いてあれば、このマスタは古い版で書かれたものなのでマージをやり直す",
        "layer '{layer}': duplicate id(s) in {field}: {examples}. Fix: set unique: true on "
        "{field} if it is missing and merge again (merge quarantines ids that are equal once "
        "surrounding spaces are trimmed as DUPLICATE_ID); if it is set, this master was written "
        "by an older version: merge again",
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
        "修正: config/project.yml の publish_crs を OGC:CRS84 にする (市の平面直角座標系 target_crs などは"
        " API の ?crs= で出力できます)",
        "publish_crs '{crs}' is not supported: the public store is always CRS84 (lon/lat). "
        "Fix: set publish_crs: OGC:CRS84 in config/project.yml (the city's plane CRS, target_crs, "
        "and others are offered as output CRSs through the API's ?crs=)",
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
    "publish_cleanup_failed": (
        "公開版 {release} に切り替えました。PostGIS {store} の古い公開スキーマは削除できませんでした "
        "({detail})。次回の公開で削除します",
        "switched to release {release}; old public schemas on PostGIS {store} could not be "
        "dropped ({detail}); the next publish drops them",
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
    "stage_tiles": ("ベクトルタイル作成・検査", "vector tiles (written and checked)"),
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
    "serve_links_follow": (
        "リンクは利用者がアクセスした URL に従います (publish.base_url 未設定)",
        "links follow the URL each client used (publish.base_url is not set)",
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
    # --- public server: request checks (publish/server)
    "err_body_too_large": (
        "リクエスト本文が大きすぎます (上限 {limit} バイト)。修正: 入力を短くする",
        "the request body is too large (limit {limit} bytes). Fix: send shorter inputs",
    ),
    "err_body_missing": (
        "リクエスト本文がありません。例: {example}",
        "the request has no body. Example: {example}",
    ),
    "err_body_encoding": (
        "リクエスト本文が UTF-8 ではありません。修正: UTF-8 の JSON で送る",
        "the request body is not UTF-8. Fix: send JSON encoded as UTF-8",
    ),
    "err_body_json": (
        "リクエスト本文が JSON として読めません ({detail})。例: {example}",
        "the request body is not valid JSON ({detail}). Example: {example}",
    ),
    "err_body_object": (
        "リクエスト本文は JSON のオブジェクト {{...}} にしてください ({got} が送られました)。例: {example}",
        "the request body must be a JSON object {{...}} (got {got}). Example: {example}",
    ),
    "err_body_key": (
        "リクエスト本文のキー '{key}' は使えません。使えるキー: {allowed}",
        "key '{key}' is not accepted in the request body. Allowed: {allowed}",
    ),
    "err_inputs_object": (
        "'inputs' は名前と値のオブジェクトにしてください。例: {example}",
        "'inputs' must be an object of names and values. Example: {example}",
    ),
    "err_input_value": (
        "入力 '{key}' は文字列か数値にしてください",
        "input '{key}' must be a string or a number",
    ),
    "err_input_missing": ("入力 '{key}' がありません", "missing input '{key}'"),
    "err_input_invalid": ("入力 '{key}' が不正です", "invalid input '{key}'"),
    "err_input_scale": (
        "縮尺は整数で指定してください", "scale must be an integer",
    ),
    "err_sheet_failed": (
        "配管参考図を作成できませんでした。時間をおいて再度お試しください。続く場合は問い合わせ先へ連絡してください",
        "the pipe sheet could not be made. Try again later; if it persists, tell the contact "
        "named on the home page",
    ),
    "err_bad_path": ("パスが不正です", "invalid path"),
    "err_server": (
        "サーバがこの要求に答えられませんでした。時間をおいて再度お試しください",
        "the server could not answer this request. Try again later",
    ),
    "sheet_no_roles": (
        "このプロジェクトには配管参考図がありません: map の role が parcel のレイヤと pipe のレイヤを公開してください",
        "this project has no pipe sheet: publish a layer with map role 'parcel' and one with "
        "role 'pipe'",
    ),
    "err_bad_host": (
        "Host ヘッダが不正です ({host})", "invalid Host header ({host})",
    ),
    "trusted_proxy_invalid": (
        "config/project.yml: publish.trusted_proxies の '{value}' は IP アドレスでもネットワーク (例: 10.0.0.0/8) でもありません",
        "config/project.yml: '{value}' in publish.trusted_proxies is neither an IP address nor a "
        "network (e.g. 10.0.0.0/8)",
    ),
    # --- landing / terms pages
    "page_title": ("{title}", "{title}"),
    "page_api": ("データ API (OGC API - Features)", "Data API (OGC API - Features)"),
    "page_api_text": (
        "GIS ソフト (QGIS など) やプログラムから公開データを取得できます。",
        "Fetch the public data from GIS software (e.g. QGIS) or programs.",
    ),
    "page_api_openapi": ("API 仕様 (OpenAPI)", "API definition (OpenAPI)"),
    "page_pipe_sheet": ("配管参考図 (PDF) の作成 (OGC API - Processes)",
                        "Pipe sheet (PDF) (OGC API - Processes)"),
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
    # ---------------------------------------------------------------- staff (統合型GIS, staff/)
    # --- departments: configuration errors
    "dept_duplicate": (
        "{file}: departments: id '{dept}' が重複しています。修正: 部署ごとに別の id にする",
        "{file}: departments: id '{dept}' is used twice. Fix: give each department its own id",
    ),
    "dept_unknown_layer": (
        "{file}: 部署 '{dept}': grants.{key} のレイヤ '{layer}' はありません。使えるもの: {known}",
        "{file}: department '{dept}': grants.{key} names unknown layer '{layer}'. Known: {known}",
    ),
    "dept_unknown_field": (
        "{file}: 部署 '{dept}': grants.fields.{layer} のフィールド '{field}' はありません。使えるもの: {known}",
        "{file}: department '{dept}': grants.fields.{layer} names unknown field '{field}'. "
        "Known: {known}",
    ),
    "dept_layer_not_confidential": (
        "{file}: 部署 '{dept}': レイヤ '{layer}' は confidential ではありません (visibility: {level})。"
        "{level} のデータは全部署が見られるため付与は不要です。修正: grants.layers から外すか、"
        "layers/{layer}.yml を visibility: confidential にする",
        "{file}: department '{dept}': layer '{layer}' is not confidential (visibility: {level}); "
        "every department reads {level} data, so a grant means nothing. Fix: remove it from "
        "grants.layers or set visibility: confidential in layers/{layer}.yml",
    ),
    "dept_field_not_confidential": (
        "{file}: 部署 '{dept}': レイヤ '{layer}' のフィールド '{field}' は confidential ではありません "
        "(visibility: {level})。修正: grants.fields.{layer} から外すか、そのフィールドを "
        "visibility: confidential にする",
        "{file}: department '{dept}': field '{field}' of layer '{layer}' is not confidential "
        "(visibility: {level}). Fix: remove it from grants.fields.{layer} or make the field "
        "visibility: confidential",
    ),
    "dept_grant_needs_id": (
        "{file}: 部署 '{dept}': 機密レイヤ '{layer}' のフィールドを付与するには識別子 '{id_field}' "
        "も必要です (地物を特定するため)。修正: grants.fields.{layer} に {id_field} を加えるか、"
        "grants.layers でレイヤ全体を付与する",
        "{file}: department '{dept}': fields of the confidential layer '{layer}' can only be "
        "granted with its id field '{id_field}' (a row must stay identifiable). Fix: add "
        "{id_field} to grants.fields.{layer}, or grant the whole layer in grants.layers",
    ),
    # --- staff commands: errors
    "staff_unknown_department": (
        "部署 '{dept}' はありません。使えるもの: {known}",
        "no department '{dept}'. Known: {known}",
    ),
    "staff_no_departments": (
        "{file} に departments: がありません。修正: 部署と、各部署が見られる機密データ (grants) を書く",
        "{file} has no departments: block. Fix: list the departments and the confidential data "
        "each may read (grants)",
    ),
    "staff_needs_postgis": (
        "部署ロール (staff grants, staff export --target postgis) は PostGIS の保存先でだけ使えます "
        "(現在: {store})。GeoPackage では staff export が部署ごとのファイルを作ります。修正: "
        "--store postgresql://... を指定する",
        "department roles (staff grants, staff export --target postgis) need a PostGIS store "
        "(now: {store}); with GeoPackage, staff export writes one file per department. Fix: "
        "pass --store postgresql://...",
    ),
    "staff_master_missing": (
        "マスタ {path} にレイヤ '{layer}' がありません。修正: uozu-gis merge を実行する",
        "the master {path} has no layer '{layer}'. Fix: run uozu-gis merge",
    ),
    "staff_master_columns": (
        "マスタのレイヤ '{layer}' に列がありません: {columns}。マスタが仕様より古いようです。"
        "修正: uozu-gis merge を実行する",
        "layer '{layer}' of the master lacks columns {columns}; the master is older than the "
        "spec. Fix: run uozu-gis merge",
    ),
    "staff_role_name": (
        "PostgreSQL の名前 '{name}' は {n} 文字で長すぎます (63 まで)。修正: postgis.schema_prefix "
        "か部署 id '{dept}' を短くする",
        "PostgreSQL name '{name}' has {n} characters, more than 63. Fix: shorten "
        "postgis.schema_prefix or the department id '{dept}'",
    ),
    "staff_role_foreign": (
        "ロール '{role}' は既にありますが uozu-gis の部署ロールではありません。上書きしません。"
        "修正: 管理者がそのロールの名前を変えるか削除する",
        "role '{role}' exists but is not a uozu-gis department role; it is left alone. Fix: "
        "have an administrator rename or drop that role",
    ),
    "staff_grants_failed": (
        "部署ロールの設定に失敗しました ({role}): {detail}。何も変更していません。修正: merge を"
        "実行するロールに CREATEROLE を与える (ALTER ROLE <ロール> CREATEROLE;) か、管理者が実行する",
        "setting up the department roles failed ({role}): {detail}; nothing was changed. Fix: "
        "give the role that runs merge CREATEROLE (ALTER ROLE <role> CREATEROLE;) or run it as "
        "an administrator",
    ),
    "staff_grants_check": (
        "部署ロールの権限が許可リストと一致しません。何も変更していません: {detail}",
        "the department roles' privileges do not match the allow-list; nothing was changed: "
        "{detail}",
    ),
    "staff_not_granted": (
        "部署 '{dept}' のビュー ({schema}) がありません。修正: uozu-gis staff grants を実行する",
        "the views of department '{dept}' ({schema}) do not exist. Fix: run uozu-gis staff "
        "grants",
    ),
    "staff_grants_stale": (
        "部署 '{dept}' のビューは実行 {view_run} のままで、現在のマスタは実行 {run} です。"
        "修正: uozu-gis staff grants を実行する (merge のたびに必要)",
        "the views of department '{dept}' still show run {view_run}; the current master is "
        "run {run}. Fix: run uozu-gis staff grants (needed after every merge)",
    ),
    "staff_out_occupied": (
        "{out} は空でないフォルダで、部署パッケージではありません。上書きしません。修正: 別の "
        "--out を指定する",
        "{out} is a non-empty folder that is not a department package; it is not overwritten. "
        "Fix: choose another --out",
    ),
    "staff_package_check": (
        "{path}: 部署 '{dept}' のパッケージが許可リストと一致しません (書込みを中止): {detail}",
        "{path}: the package of department '{dept}' does not match its allow-list (nothing "
        "written): {detail}",
    ),
    "staff_qgis_missing": (
        "PyQGIS が使えません ({detail})。修正: scripts/setup.sh を実行する (Debian: apt-get "
        "install python3-qgis)",
        "PyQGIS is not available ({detail}). Fix: run scripts/setup.sh (Debian: apt-get "
        "install python3-qgis)",
    ),
    "staff_qgis_failed": (
        "QGIS プロジェクトの作成に失敗しました: {detail}",
        "writing the QGIS project failed: {detail}",
    ),
    "staff_project_check": (
        "QGIS で開き直したプロジェクト {path} が期待と違います: {detail}",
        "the QGIS project {path}, re-opened in QGIS, is not as expected: {detail}",
    ),
    # --- staff commands: results and texts
    "staff_export_done": (
        "部署 '{dept}' のパッケージを {out} に作成しました ({layers} レイヤ, {features} 件, 実行 {run})",
        "package of department '{dept}' written to {out} ({layers} layers, {features} features, "
        "run {run})",
    ),
    "staff_grants_done": (
        "部署ロールを設定しました: {roles} (実行 {run}, {views} ビュー, {seconds:.2f} 秒)。"
        "merge のたびに再実行してください",
        "department roles set: {roles} (run {run}, {views} views, {seconds:.2f} s). Run it again "
        "after every merge",
    ),
    "staff_grants_dropped": (
        "設定から消えた部署のロールを削除しました: {roles}",
        "dropped the roles of departments no longer configured: {roles}",
    ),
    "staff_grants_kept": (
        "ロール '{role}' は他の権限があるため削除できず、部署スキーマだけ削除しました: {detail}",
        "role '{role}' could not be dropped (it holds other privileges); only its schema was "
        "dropped: {detail}",
    ),
    "staff_role_comment": (
        "uozu-gis 部署ロール: {name} (uozu-gis staff grants が管理)",
        "uozu-gis department role: {name} (managed by uozu-gis staff grants)",
    ),
    "staff_service_note": (
        "この接続は各自のユーザー名でログインします (情報システム担当が GRANT {role} TO <ユーザー>; で許可)。パスワードはここに書かず、QGIS の認証か pgpass に",
        "Log in with your own user name (IT grants it: GRANT {role} TO <user>;). No password "
        "here: use QGIS authentication or pgpass",
    ),
    "staff_readme_gpkg": (
        "{city} 統合型GIS — {dept}\n"
        "{id}.qgz をダブルクリックするか、QGIS の「プロジェクト > 開く」で開きます (QGIS 3.22 以降)。"
        "データは同じフォルダの {id}.gpkg にあり、この部署が閲覧できる項目だけが入っています。"
        "フォルダごとコピーして使えます。部署外に渡さないでください。"
        "背景地図 (地理院タイル) はインターネットに接続できないときは表示されません。"
        "その端末では QGIS がタイルの取得でネットワークのタイムアウト (既定 60 秒) まで待つので、"
        "「設定 > オプション > ネットワーク」のタイムアウトを 5000 ミリ秒程度に下げるか、"
        "背景地図レイヤを非表示にしてください。"
        "印刷は「プロジェクト > レイアウト」の A4 横 / A3 横 から。",
        "{city} integrated GIS — {dept}\n"
        "Open {id}.qgz by double-clicking it or with Project > Open in QGIS (3.22 or later). "
        "The data are in {id}.gpkg beside it and hold only what this department may read. "
        "Copy the whole folder; do not pass it outside the department. The basemap (GSI "
        "tiles) shows only with an internet connection; without one QGIS waits for its "
        "network timeout (60 s by default) on the tiles, so lower it in Settings > Options > "
        "Network (e.g. 5000 ms) or hide the basemap layer. Print from Project > Layouts "
        "(A4 / A3 landscape).",
    ),
    "staff_readme_postgis": (
        "{city} 統合型GIS — {dept}\n"
        "1. pg_service.conf の内容を各自の接続サービスファイルに加えます (Windows: "
        "%APPDATA%\\postgresql\\.pg_service.conf、Linux/macOS: ~/.pg_service.conf)。\n"
        "2. {id}.qgz を QGIS で開き、自分のユーザー名とパスワードでログインします。"
        "見えるのはこの部署に許可されたデータだけです (データベースが制限します)。",
        "{city} integrated GIS — {dept}\n"
        "1. Add the entry in pg_service.conf to your own connection service file (Windows: "
        "%APPDATA%\\postgresql\\.pg_service.conf, Linux/macOS: ~/.pg_service.conf).\n"
        "2. Open {id}.qgz in QGIS and log in with your own user name and password. You see "
        "only what this department may read (the database enforces it).",
    ),
    "staff_other_theme": ("その他", "Other"),
    "staff_basemap": ("地理院タイル（標準地図）", "GSI tiles (standard map)"),
    "staff_basemap_attribution": ("出典：国土地理院", "Source: Geospatial Information Authority of Japan"),
    "staff_project_title": ("{city} 統合型GIS — {dept}", "{city} integrated GIS — {dept}"),
    "staff_project_abstract": (
        "{dept} が閲覧できるデータ (統合処理 {run} のマスタから作成)。出典: {sources}",
        "Data {dept} may read (made from the master of merge run {run}). Sources: {sources}",
    ),
    "staff_layout": ("{paper} 横", "{paper} landscape"),
    "staff_legend": ("凡例", "Legend"),
    "staff_sources": ("出典: {sources}", "Sources: {sources}"),
    "staff_data_date": (
        "データ時点: {date} (統合処理 {run}) / 作成: {created} {dept}",
        "Data as of {date} (merge run {run}) / made {created} for {dept}",
    ),
    "staff_layer_date": ("データ時点: {date} (統合処理 {run})", "Data as of {date} (merge run {run})"),
    "staff_confidential_mark": (
        "取扱注意: 守秘義務の対象となる情報を含みます。部署外に持ち出さないでください",
        "Confidential: contains information under a duty of secrecy. Do not take it out of "
        "the department",
    ),
    "staff_scale": ("縮尺 1:[%format_number(@map_scale, 0)%]", "Scale 1:[%format_number(@map_scale, 0)%]"),
    "staff_quarantine": ("隔離", "quarantine"),
    "access_title": ("部署 × レイヤ/フィールド の閲覧権限", "Access by department × layer/field"),
    "access_legend": (
        "○ 閲覧可  △ 一部の列  × 閲覧不可  (公開区分: public 公開 / internal 職員 / confidential 機密)",
        "○ may read  △ some columns  × may not  (levels: public / internal: all staff / "
        "confidential: by grant)",
    ),
    "access_layer": ("レイヤ / フィールド", "layer / field"),
    "access_level": ("区分", "level"),
    "report_withheld": ("（取扱注意：非表示）", "withheld: confidential"),
    "report_confidential_header": (
        "取扱注意: 機密 (confidential) のレイヤ・項目の隔離行 {rows} 件（元の属性を含む）。"
        "権限のある課（config/project.yml の departments）以外に渡さないこと",
        "CONFIDENTIAL: {rows} quarantine rows of confidential layers/fields (raw attributes "
        "included). Do not pass on beyond the departments granted them (departments: in "
        "config/project.yml)",
    ),
    "staff_suffix_qual": ("区分", "qualifier"),
    "staff_suffix_raw": ("原表記", "as recorded"),
    "staff_suffix_main": ("本番", "main number"),
    "staff_suffix_branch": ("枝番", "branch number"),
    "staff_suffix_min_m": ("下限 m", "min m"),
    "staff_suffix_max_m": ("上限 m", "max m"),
    "staff_suffix_rank": ("ランク", "rank"),
    "lineage_source_system": ("出典システム", "Source system"),
    "lineage_source_name": ("出典ソース", "Source name"),
    "lineage_source_file": ("出典ファイル", "Source file"),
    "lineage_source_record": ("出典レコード", "Source record"),
    "lineage_source_hash": ("出典ファイルハッシュ", "Source file hash"),
    "lineage_spec_version": ("仕様版", "Spec version"),
    "lineage_run_id": ("統合処理ID", "Merge run"),
    "lineage_xy_transform": ("座標変換", "Coordinate transformation"),
    "lineage_quality_flags": ("品質フラグ", "Quality flags"),
    # ================================================================ map pages (publish/pages)
    # --- map declarations (config checks: file, key, fix)
    "mapcfg_unknown_page": (
        "{file}: map.pages のページ '{page}' は宣言されていません。修正: config/project.yml の "
        "publish.pages に id: {page} を加えるか名前を直す (宣言済み: {known})",
        "{file}: map.pages names page '{page}', which is not declared. Fix: add id: {page} to "
        "publish.pages in config/project.yml or correct the name (declared: {known})",
    ),
    "mapcfg_no_page": (
        "{file}: 公開レイヤですが、どの地図ページにも載っていません。修正: map: {{pages: [{first}]}} "
        "を加える (地図に載せないなら map: {{pages: []}} と書く)",
        "{file}: a public layer on no map page. Fix: add map: {{pages: [{first}]}} (or write "
        "map: {{pages: []}} to keep it off the maps)",
    ),
    "mapcfg_not_public": (
        "{file}: visibility が {visibility} のレイヤは地図に載せられません (地図は公開データだけ)。"
        "修正: map.pages を [] にするか visibility: public にする",
        "{file}: a layer with visibility {visibility} cannot be on a map (maps show public data "
        "only). Fix: set map.pages to [] or make the layer public",
    ),
    "mapcfg_field_unknown": (
        "{file}: map の {key} が使う項目 '{field}' はこのレイヤにありません。使える項目: {known}",
        "{file}: map {key} uses field '{field}', which this layer does not have. Known: {known}",
    ),
    "mapcfg_field_internal": (
        "{file}: map の {key} が使う項目 '{field}' は公開されません (visibility: {visibility})。"
        "修正: その項目を visibility: public にするか map から外す",
        "{file}: map {key} uses field '{field}', which is not public (visibility: "
        "{visibility}). Fix: make the field public or remove it from map",
    ),
    "mapcfg_no_codelist": (
        "{file}: map の {key} の項目 '{field}' にはコード表がありません (色分けの色はコード表から)。"
        "修正: 項目に codelist を付けるか、{key} を外して color を使う",
        "{file}: map {key}: field '{field}' has no code list (colours come from code lists). "
        "Fix: give the field a codelist, or drop {key} and use color",
    ),
    "mapcfg_unknown_codelist": (
        "{file}: map の {key}: コード表 '{name}' がありません。修正: layers/codelists/{name}.yml "
        "を作るか名前を直す",
        "{file}: map {key}: code list '{name}' not found. Fix: create "
        "layers/codelists/{name}.yml or correct the name",
    ),
    "mapcfg_unknown_code": (
        "{file}: map の {key}: コード '{code}' はコード表 '{codelist}' にありません (ある: {known})",
        "{file}: map {key}: code '{code}' is not in code list '{codelist}' (known: {known})",
    ),
    "mapcfg_page_empty": (
        "config/project.yml: 地図ページ '{page}' に載るレイヤがありません。修正: 公開レイヤの "
        "map.pages に {page} を加えるか、ページの宣言を消す",
        "config/project.yml: map page '{page}' has no layer. Fix: add {page} to map.pages of a "
        "public layer, or remove the page",
    ),
    "mapcfg_page_twice": (
        "config/project.yml: 地図ページ '{page}' が2回宣言されています。修正: id を変える",
        "config/project.yml: map page '{page}' is declared twice. Fix: give it another id",
    ),
    "mapcfg_two_parcels": (
        "地図ページ '{page}' に地番 (role: parcel) のレイヤが複数あります: {layers}。"
        "修正: 1つだけ role: parcel にする",
        "map page '{page}' has more than one parcel layer (role: parcel): {layers}. Fix: keep "
        "one",
    ),
    "mapcfg_terms_missing": (
        "config/project.yml: 地図ページ '{page}' は terms: true ですが publish.terms がありません。"
        "修正: publish.terms.paragraphs に利用条件を書く",
        "config/project.yml: map page '{page}' has terms: true but there is no publish.terms. "
        "Fix: write the terms of use in publish.terms.paragraphs",
    ),
    # --- building the pages (publish: exit code 1, nothing published)
    "map_page_no_layers": (
        "地図ページ '{page}' のレイヤ ({layers}) が公開データにひとつもありません",
        "none of the layers of map page '{page}' ({layers}) is in the public store",
    ),
    "map_column_missing": (
        "地図ページ '{page}': レイヤ '{layer}' の map が使う列 '{column}' は公開データにありません。"
        "修正: layers/{layer}.yml の map を直す (公開される列: {known})",
        "map page '{page}': layer '{layer}' uses column '{column}', which is not in the public "
        "store. Fix: correct map in layers/{layer}.yml (public columns: {known})",
    ),
    "map_data_too_big": (
        "地図ページ '{page}' の埋め込みデータが {mb} MB あり、上限 {limit} MB を超えます。修正: 大きな"
        "レイヤの map に embed: false を書く (表示範囲ごとに API から読む)",
        "map page '{page}': its embedded data is {mb} MB, over the {limit} MB limit. Fix: write "
        "embed: false in map of the large layers (they then load by view from the API)",
    ),
    # --- vector tiles of the pages (publish/build/tiles.py; exit code 1, nothing published)
    "tiles_failed": (
        "ベクトルタイルを書けませんでした (レイヤ '{layer}'): {error}。修正: 公開データの "
        "{layer} の形状を確かめて、もう一度 publish する",
        "could not write the vector tiles (layer '{layer}'): {error}. Fix: check the geometries "
        "of {layer} in the public store and publish again",
    ),
    "map_tiles_missing": (
        "地図ページ '{page}': レイヤ '{layer}' のベクトルタイルがありません。ページはタイルの後に作ります"
        " (publish が両方を作る。単独で作るときは先に publish.build.tiles.write_page_tiles)",
        "map page '{page}': there are no vector tiles for layer '{layer}'. Pages are built after "
        "their tiles (publish builds both; alone, call publish.build.tiles.write_page_tiles first)",
    ),
    "tiles_empty": (
        "地図ページ '{page}' のレイヤに形状のある地物がひとつもありません (タイルが空)",
        "no layer of map page '{page}' has a feature with a geometry (the tiles would be empty)",
    ),
    "precompress_mismatch": (
        "圧縮済みの写し {path} が元のファイルと一致しません。公開を中止しました",
        "the precompressed copy {path} does not match its file. Publication stopped",
    ),
    "tiles_leak": (
        "漏えい検査: タイル {path} に公開してはならないもの ({what}) があります。公開を中止しました",
        "leak check: the tiles {path} hold something that must not be published ({what}). "
        "Publication stopped",
    ),
    "tiles_incomplete": (
        "タイル {path} のレイヤ '{layer}' の地物が {have} 件で、公開データの {want} 件と一致しません。"
        "公開を中止しました",
        "tiles {path}: layer '{layer}' holds {have} features, the public store {want}. "
        "Publication stopped",
    ),
    # --- the sheet PDF pool (publish/server/pdf_pool.py)
    "sheet_busy": (
        "配管参考図の作成が混み合っています。{seconds} 秒後にもう一度お試しください",
        "The pipe sheet service is busy. Please try again in {seconds} s",
    ),
    "sheet_failed_render": (
        "配管参考図を作成できませんでした: {error}",
        "The pipe sheet could not be made: {error}",
    ),
    # --- what the pages say (ja, en; the page shows one language at a time)
    "map_legend_button": ("凡例・出典", "Legend"),
    "map_legend_title": ("凡例", "Legend"),
    "map_close": ("閉じる", "Close"),
    "map_locate": ("現在地", "My location"),
    "map_label": ("地図", "Map"),
    "map_noscript": ("この地図には JavaScript が必要です。", "This map needs JavaScript."),
    "map_loading": ("読み込み中…", "Loading…"),
    "map_load_error": ("データを取得できませんでした（{layer}）。再試行します",
                       "Could not load data ({layer}); will retry"),
    "map_zoom_hint": ("{layers}はズーム{z}以上で表示されます（拡大してください）",
                      "{layers}: shown at zoom {z} and above, zoom in"),
    "map_too_many": ("{layer}: 表示範囲の件数が多すぎます。拡大してください",
                     "{layer}: too many features in view, zoom in"),
    "map_geo_locating": ("位置を調べています…", "Finding your location…"),
    "map_geo_found": ("現在地（誤差 約{m} m）", "Your location (within about {m} m)"),
    "map_geo_unsupported": (
        "この端末やブラウザでは現在地を使えません（暗号化されていない接続では使えないことがあります）。",
        "Location is not available on this device or browser (it may need a secure "
        "connection).",
    ),
    "map_geo_denied": (
        "現在地の利用が許可されませんでした（ブラウザの設定を確認してください）。",
        "Permission to use your location was denied (check your browser settings).",
    ),
    "map_geo_unavailable": ("現在地を取得できませんでした。", "Your location could not be found."),
    "map_geo_timeout": ("現在地の取得に時間がかかりすぎました。もう一度試してください。",
                        "Finding your location took too long. Please try again."),
    "map_tiles_failed": (
        "背景地図を読み込めませんでした。データの表示と検索はそのまま使えます。",
        "The background map could not load. The data and the searches still work.",
    ),
    "map_sources_title": ("出典・データ時点", "Sources and data dates"),
    "map_as_of": ("{date}時点", "as of {date}"),
    "map_date_unknown": ("時点不明", "date unknown"),
    "map_licence": ("利用条件", "Licence"),
    "map_basemap": ("背景地図", "Basemap"),
    "map_basemap_attr": ("地理院タイル（国土地理院）",
                         "GSI tiles (Geospatial Information Authority of Japan)"),
    "map_basemap_pale": ("地理院タイル（淡色）", "GSI tiles (pale)"),
    "map_basemap_std": ("地理院タイル（標準）", "GSI tiles (standard)"),
    "map_attr_toggle": ("出典をすべて表示／折りたたむ", "Show or fold all sources"),
    "map_list_sep": ("、", ", "),
    "map_color_by": ("色分け", "Colour by"),
    "map_width_by": ("{title}（線の太さ）", "{title} (line width)"),
    "map_direction": ("線の向き（流れの方向）", "Line direction (flow)"),
    "map_zoom_range": ("ズーム{z}以上で表示", "shown at zoom {z} and above"),
    "map_yes": ("はい", "yes"),
    "map_no": ("いいえ", "no"),
    "map_unknown": ("不明", "unknown"),
    "map_outside": ("この地点は、この地図の範囲（{city}）の外です。",
                    "This spot is outside the area this map covers ({city})."),
    "map_terms_title": ("ご利用の前に（利用条件）", "Before you use this map (terms of use)"),
    "map_terms_version": ("第{v}版", "version {v}"),
    "map_terms_source": ("出典", "Sources"),
    "map_terms_dates": ("データ時点", "Data as of"),
    "map_terms_full": ("利用規約の全文", "Full terms of use"),
    "map_terms_agree": ("同意して地図を表示", "Agree and show the map"),
    "map_terms_decline": ("同意しない", "Decline"),
    "map_terms_declined": ("同意いただけない場合は地図を表示できません。",
                           "The map cannot be shown without your consent."),
    "map_contact": ("問い合わせ先", "Contact"),
    # parcel search and pipe sheets (pages with a parcel layer)
    "map_search_title": ("地番検索", "Lot number search"),
    "map_search_oaza": ("大字", "Town (oaza)"),
    "map_search_chiban": ("地番", "Lot number"),
    "map_search_placeholder": ("例: 123-4, 123番4", "e.g. 123-4"),
    "map_search_go": ("検索", "Search"),
    "map_search_empty": ("大字と地番を入力してください", "Choose a town and enter a lot number"),
    "map_search_found": ("{oaza} {chiban} を表示しています", "Showing {oaza} {chiban}"),
    "map_search_none": ("{oaza} {chiban} は見つかりません", "{oaza} {chiban} was not found"),
    "map_search_error": ("検索できませんでした", "Search failed"),
    "map_parcel_hit": ("検索した筆", "Parcel found"),
    "map_sheet": ("配管参考図PDF", "Pipe sheet PDF"),
    "map_sheet_making": ("PDFを作成しています…", "Making the PDF…"),
    "map_sheet_done": ("PDFを作成しました", "PDF ready"),
    "map_sheet_failed": ("PDFを作成できませんでした", "Could not make the PDF"),
    "map_sheet_busy": ("混み合っています。{s} 秒後にもう一度押してください",
                       "Busy: please press again in {s} s"),
    # the information sheet (bottom on phones, right on wide screens) and what a tap lists
    "map_sheet_label": ("地図の情報", "Map information"),
    "map_sheet_open": ("情報を広げる", "Expand the information"),
    "map_sheet_close": ("情報をたたむ", "Fold the information"),
    "map_pick_hint": ("地図をタップ（キーボードでは地図で Enter）すると、その場所の地物を一覧します。",
                      "Tap the map (or press Enter on the map) to list what is there."),
    "map_pick_title": ("この場所の地物（{n} 件）", "Features here ({n})"),
    "map_pick_none": ("この場所には地物がありません。線の近くをタップしてください。",
                      "Nothing here. Tap closer to a line."),
    "map_pick_zoom": ("{layer}: 拡大すると1本ずつ選べます", "{layer}: zoom in to choose single items"),
    "map_pick_zoom_go": ("ここを拡大", "Zoom in here"),
    "map_pick_back": ("一覧に戻る", "Back to the list"),
    "map_pick_kbd": ("地図の中心（＋）の地物を一覧するには Enter", "Press Enter to list what is at the centre (+)"),
    "map_pipes_title": ("この筆から {m} m 以内の管路", "Pipes within {m} m of this parcel"),
    "map_pipes_none": ("{m} m 以内に管路はありません", "No pipe within {m} m"),
    "map_pipes_loading": ("管路を調べています…", "Looking for pipes…"),
    "map_pipes_error": ("管路を取得できませんでした", "The pipes could not be loaded"),
    # the API behind the front is down (502/503/504 or no answer): the map itself keeps working
    "map_api_unavailable": ("検索とPDFは一時的に利用できません。地図はこのまま見られます。"
                            "しばらくしてから再度お試しください。",
                            "Search and PDF sheets are unavailable for the moment; the map keeps "
                            "working. Please try again later."),
    "map_pipes_kind": ("種別", "Kind"),
    "map_pipes_more": ("ほか {n} 件は地図で確かめてください", "{n} more: see the map"),
    "map_dialog_terms": ("利用条件", "Terms of use"),
    # the risk card (pages with hazard or shelter layers)
    "map_hz_hint": (
        "地図をタップするか「現在地」を押すと、その地点の災害の想定と、近くの避難場所を表示します。",
        "Tap the map or press “My location” to see the hazards at that spot and the nearest "
        "shelters.",
    ),
    "map_hz_centre": ("中心を調べる", "Check centre"),
    "map_hz_card_title": ("この地点の災害リスク", "Hazards at this spot"),
    "map_hz_point_tap": ("タップした地点", "The spot you tapped"),
    "map_hz_point_centre": ("地図の中心", "The centre of the map"),
    "map_hz_point_gps": ("現在地（誤差 約{acc} m）", "Your location (within about {acc} m)"),
    "map_hz_coords": ("北緯 {lat}°・東経 {lon}°", "{lat}° N, {lon}° E"),
    "map_hz_hit": ("{label}", "{label}"),
    "map_hz_hit_range": ("{label}（{range}）", "{label} ({range})"),
    "map_hz_name": ("{name}", "{name}"),
    "map_hz_none": ("{title}：区域外", "{title}: outside"),
    "map_hz_undesignated": ("（指定前・基礎調査の結果）", "(not yet designated: survey result)"),
    "map_hz_range_m": ("{min}〜{max} m", "{min}–{max} m"),
    "map_hz_range_open_m": ("{min} m以上", "{min} m or more"),
    "map_hz_range_below_m": ("{max} m未満", "less than {max} m"),
    "map_hz_none_all": ("この地点は、この地図のどの災害の区域にも入っていません。",
                        "This spot is not in any hazard zone on this map."),
    "map_hz_none_note": ("想定を超える災害も起こりえます。下の避難場所も確かめておきましょう。",
                         "Disasters can exceed the assumptions. Check the shelters below too."),
    "map_hz_shelters_for": ("{hazard}のときの避難場所（近い順）",
                            "Shelters for {hazard} (nearest first)"),
    "map_hz_shelter_distance": ("直線で {d} m", "{d} m in a straight line"),
    "map_hz_shelters_none": ("この災害に対応する避難場所はデータにありません。",
                             "No shelter in the data is designated for this hazard."),
    "map_hz_show_on_map": ("地図で見る", "Show on map"),
    "map_hz_distance_note": (
        "距離は直線距離です。実際の道のりはもっと長くなります。避難の際は市の防災情報と避難指示に"
        "従ってください。",
        "Distances are straight-line; the way there is longer. When evacuating, follow the "
        "city's disaster information and evacuation orders.",
    ),
    "map_hz_reference_note": (
        "この地図は想定にもとづく参考図です。色の付いていない所が安全とは限りません。",
        "This map shows assumptions, for reference. Places with no colour are not necessarily "
        "safe.",
    ),
    "map_hz_probe_label": ("調べた地点", "Checked spot"),
    "map_hz_legend_shelter_note": (
        "避難場所の下の文字は、対象とする災害です（空欄は対象外）。地図を拡大すると表示されます。",
        "The letters under a shelter show the hazards it is designated for (a blank box: not "
        "designated). They appear when you zoom in.",
    ),
    "map_hz_shelter_for": ("対象とする災害", "Designated for"),
    "map_hz_shelter_yes": ("対象", "yes"),
    "map_hz_shelter_no": ("対象外", "no"),
    "map_hz_shelter_aria": ("避難場所 {name}。対象とする災害：{list}",
                            "Shelter {name}. Designated for: {list}"),
    "map_hz_shelter_aria_none": ("なし", "none"),
    # names and one-letter shelter badges of the common hazard kinds (config.models
    # KNOWN_HAZARD_KINDS; another kind is named by its layer's hazard.title)
    "map_kind_flood": ("洪水", "Flood"),
    "map_kind_inland_flood": ("内水氾濫", "Inland flooding"),
    "map_kind_tsunami": ("津波", "Tsunami"),
    "map_kind_storm_surge": ("高潮", "Storm surge"),
    "map_kind_landslide": ("土砂災害", "Landslide"),
    "map_kind_earthquake": ("地震", "Earthquake"),
    "map_kind_large_fire": ("大規模な火事", "Large-scale fire"),
    "map_kind_volcano": ("火山", "Volcano"),
    "map_glyph_flood": ("洪", "Fl"),
    "map_glyph_inland_flood": ("内", "In"),
    "map_glyph_tsunami": ("津", "Ts"),
    "map_glyph_storm_surge": ("潮", "Ss"),
    "map_glyph_landslide": ("崖", "Ls"),
    "map_glyph_earthquake": ("震", "Eq"),
    "map_glyph_large_fire": ("火", "Fi"),
    "map_glyph_volcano": ("山", "Vo"),
    # ---------------------------------------------------------------- pipe sheets (PDF)
    "sheet_store_missing": (
        "公開データがまだありません。修正: 先に 'uozu-gis publish' を実行",
        "there is no public store yet. Fix: run 'uozu-gis publish' first",
    ),
    "sheet_roles_missing": (
        "配管参考図を作れません: 地番 (role: parcel) と管路 (role: pipe) のレイヤが同じ地図ページに"
        "必要です。修正: layers/*.yml の map に役割を書く",
        "no pipe sheet: it needs a parcel layer (role: parcel) and pipe layers (role: pipe) on "
        "the same map page. Fix: declare the roles in map of layers/*.yml",
    ),
    "sheet_no_parcels": (
        "公開データに地番図 '{layer}' がありません。修正: 'uozu-gis publish' をやり直す",
        "the public store has no parcel layer '{layer}'. Fix: run 'uozu-gis publish' again",
    ),
    "sheet_bad_scale": (
        "縮尺 1/{scale} には対応していません。使える縮尺: {allowed}",
        "scale 1:{scale} is not supported. Supported: {allowed}",
    ),
    "sheet_bad_paper": (
        "用紙 '{paper}' には対応していません。使える用紙: A4, A3（横向きは A4-landscape など）",
        "paper '{paper}' is not supported. Use A4 or A3 (landscape: A4-landscape, ...)",
    ),
    "sheet_bad_chiban": (
        "地番 '{raw}' を読み取れません。例: 123-4, 123番4",
        "cannot read the lot number '{raw}'. Example: 123-4",
    ),
    "sheet_unknown_oaza": (
        "大字 '{oaza}' は地番図にありません。{hint_ja}",
        "there is no town (oaza) '{oaza}' in the parcel map. {hint_en}",
    ),
    "sheet_unknown_chiban": (
        "大字{oaza}に地番 {chiban}（入力: {raw}）はありません。{hint_ja}",
        "lot {chiban} (entered: {raw}) does not exist in {oaza}. {hint_en}",
    ),
    "sheet_hint_oaza": ("候補: {v}", "Did you mean: {v}"),
    "sheet_hint_chiban": ("近い地番: {v}", "Nearby lots: {v}"),
    "sheet_title": ("配管参考図", "pipe reference sheet"),
    "sheet_heading": ("{city} {utilities}{title}　大字 {oaza}　地番 {chiban}",
                      "{city} — {utilities}{title}: {oaza} lot {chiban}"),
    "sheet_stamp": ("参考図", "REFERENCE ONLY"),
    "sheet_notice": ("注意", "Notice"),
    "sheet_notice_default": (
        "この図は参考図です。位置・管径・管種などは台帳に基づく概略で、現地と異なる場合があります。"
        "測量成果ではなく、境界などの権利関係を示すものでもありません。工事・設計・取引の前には、"
        "必ず担当窓口で台帳を確認してください。",
        "Reference only. Positions, diameters and materials are approximate, taken from the "
        "ledgers, and may differ on site. This is not a survey and shows no legal boundaries. "
        "Before any construction, design or transaction, confirm with the ledgers at the counter.",
    ),
    "sheet_legend": ("凡例", "Legend"),
    "sheet_scale": ("縮尺 1/{scale}（{paper}・100%印刷時）",
                    "Scale 1:{scale} on {paper} at 100 % (actual size)"),
    "sheet_scale_short": ("縮尺 1/{scale}", "Scale 1:{scale}"),
    "sheet_no_pipes": ("範囲内に管路なし", "no pipes in this sheet"),
    "sheet_target": ("対象の筆", "This parcel"),
    "sheet_direction": ("→ 流れの方向", "→ flow direction"),
    "sheet_label_note": ("ラベル: {examples}。線の太さは管径を表す。",
                         "Labels: {examples}. Line width shows the diameter."),
    "sheet_material": ("管種", "Material"),
    "sheet_dates": ("データ時点", "Data as of"),
    "sheet_sources": ("出典", "Sources"),
    "sheet_crs": ("座標系", "CRS"),
    "sheet_frame_xy": ("図郭座標 {axes} [m]", "frame coordinates {axes} [m]"),
    "sheet_axis_north": ("北", "north"),
    "sheet_axis_east": ("東", "east"),
    "sheet_zone": ("平面直角座標系 第{zone}系", "plane rectangular CS zone {zone}"),
    "sheet_issued": ("作成日", "Issued"),
    "sheet_contact": ("問い合わせ", "Contact"),
    "sheet_online": ("オンライン地図", "Online map"),
    "sheet_grid_north": ("座標北", "grid north"),
    "sheet_convergence": ("真北との差 {d}°", "{d}° from true north"),
    "sheet_unknown": ("不明", "unknown"),
    "sheet_table_heading": ("管路一覧 {oaza} {chiban}（図の範囲）", "Pipes in the sheet's frame, {oaza} {chiban}"),
    "sheet_table_pipes": ("{utility}: {layer}（{n} 本）", "{utility}: {layer} ({n})"),
    "sheet_table_in_frame": ("図内の延長 (m)", "Length in frame (m)"),
    "sheet_col_diameter": ("管径", "Diameter"),
    "sheet_col_material": ("管種", "Material"),
    "sheet_col_year": ("布設年度", "Year laid"),
    "sheet_col_depth": ("土被り (m)", "Cover depth (m)"),
    "sheet_table_connections": ("この筆の{layer}（{n} 件）", "{layer} of this parcel ({n})"),
    "sheet_table_none": ("台帳に記録はありません", "none recorded in the ledger"),
    "sheet_table_more": ("ほか {n} 本は図で確かめてください", "{n} more: see the map"),
    "sheet_table_note": (
        "値は公開データ（台帳）の記録です。— は記録がないことを示します。土被りは台帳の記録で、工事の前には試掘で確かめてください。",
        "Values are the public ledger's records; — means not recorded. Cover depths are as "
        "recorded: confirm by trial digging before any work.",
    ),
    # --- walking routes to shelters (publish/build/routing.py, process walk-route)
    # --- the one search of every page (publish/static/map/search.js)
    "search_label": ("住所・地番・施設名で探す", "Search an address, lot number or place"),
    "search_placeholder": ("例: 本町 123-4、○○小学校", "e.g. 本町 123-4, a school's name"),
    "search_go": ("探す", "Search"),
    "search_loading": ("検索の準備をしています…", "Preparing the search…"),
    "search_error": ("検索の準備ができませんでした。通信を確かめてください", "The search could not be loaded: check the connection"),
    "search_none": ("「{q}」は見つかりません。大字と地番、住所、施設名で探せます", "Nothing found for “{q}”: try a town and lot number, an address or a place name"),
    "search_count": ("{n} 件 (↑↓で選び Enter で表示)", "{n} found (↑↓ to choose, Enter to show)"),
    "search_shown": ("{label} を表示しています", "Showing {label}"),
    "search_kind_oaza": ("大字", "town"),
    "search_kind_parcel": ("地番", "lot"),
    "search_kind_place": ("施設", "place"),
    "search_kind_address": ("住所", "address"),
    # --- language switch of every page (config/i18n.py: ja, en, ja@easy)
    "lang_label": ("言語", "Language"),
    "lang_ja": ("日本語", "日本語"),
    "lang_en": ("English", "English"),
    "lang_easy": ("やさしい にほんご", "やさしい にほんご"),
    # --- walking routes on the hazard map (publish/static/map/route.js)
    "route_button": ("{kind}の避難場所までの道順", "Walking route to a {kind_en} shelter"),
    "route_loading": ("道順を調べています…", "Finding the way…"),
    "route_failed": ("道順を調べられませんでした", "The way could not be found"),
    "route_summary": ("{name}まで 約 {d} m・徒歩 約 {min} 分", "{name}: about {d} m, {min} min on foot"),
    "route_speed_note": ("時間は 1 秒に {speed} m 歩く場合です。足の不自由な方や子ども連れはもっとかかります", "Times assume walking {speed} m a second; it takes longer with small children or walking difficulties"),
    "route_clear": ("道順を消す", "Clear the route"),
    "route_directions": ("道順", "Directions"),
    "route_caution": ("道順は地図上の道路から求めた目安です。通れない道や危ない所を避け、市の避難情報に従ってください", "The route is a guide computed from the mapped roads: avoid blocked or dangerous ways and follow the city's evacuation information"),
    # --- the risk card (publish/static/map/hazard.js)
    "card_no_data": ("この地点には想定のデータがありません（{title} の調べた範囲の外です）。安全という意味ではありません", "No data for this spot (outside the area surveyed for {title_en}). It does not mean safe"),
    "card_shelter_in_zone": ("注意: この避難場所は{kind}の想定区域（{label}）の中にあります", "Caution: this shelter lies inside the {kind_en} zone ({label})"),
    "card_guidance": ("とるべき行動", "What to do"),
    "route_graph_summary": (
        "歩行ネットワーク: 交点 {nodes}・区間 {edges}・連結成分 {parts} (最大の成分の交点 {largest})",
        "walking network: {nodes} junctions, {edges} pieces of street, {parts} connected "
        "part(s) (largest: {largest} junctions)",
    ),
    "route_graph_format": (
        "{path}: 歩行ネットワークの形式 {found} は読めません (対応: {expected})。修正: uozu-gis publish を実行し直す",
        "{path}: walking network format {found} is not supported (expected {expected}). "
        "Fix: run uozu-gis publish again",
    ),
    "route_network_layers": (
        "map.network: walk のレイヤ {layers} は公開された線のレイヤではありません。使えるもの: {known}",
        "layers {layers} say map.network: walk but are not public line layers. Known: {known}",
    ),
    "route_network_missing": (
        "歩行ネットワークのレイヤ '{layer}' が公開データ {path} にありません。修正: uozu-gis merge の後に publish する",
        "network layer '{layer}' is not in the public store {path}. "
        "Fix: run uozu-gis merge, then publish",
    ),
    "route_unknown_kind": (
        "災害の種類 '{kind}' はありません。使えるもの: {known}",
        "no hazard kind '{kind}'. Known: {known}",
    ),
    "route_snap_far": (
        "この地点から {limit} m 以内に地図上の道路がありません (最も近い道路まで {dist} m)。道路の近くの地点を選んでください",
        "no mapped road within {limit} m of this point (nearest: {dist} m). "
        "Pick a point near a road",
    ),
    "route_no_shelter": (
        "{kind}に対応する避難場所は登録されていません",
        "no shelter is designated for {kind_en}",
    ),
    "route_disconnected": (
        "この地点の道路は、{kind}に対応する避難場所につながっていません (地図上の道路網が {parts} つに分かれています)。"
        "直線距離で最も近いのは {name} ({dist} m) です",
        "the roads at this point do not reach any shelter designated for {kind_en} (the mapped "
        "road network is in {parts} separate parts). Nearest as the crow flies: {name} ({dist} m)",
    ),
    "route_unreachable_part": (
        "直線距離ではもっと近い {name} ({dist} m) など {n} か所は、地図上の道路網の別の部分にあり経路を出せません",
        "{name} ({dist} m as the crow flies) and {n} nearer shelter(s) in all lie on a separate "
        "part of the mapped road network: no route to them",
    ),
    "route_unreachable_off": (
        "直線距離ではもっと近い {name} ({dist} m) など {n} か所は、道路から {limit} m 以上離れていて経路を出せません",
        "{name} ({dist} m as the crow flies) and {n} nearer shelter(s) in all are more than "
        "{limit} m from a mapped road: no route to them",
    ),
    "route_link_note": (
        "経路には地図上の道路がない区間 (直線、最長 {m} m) を含みます。現地の道を確かめてください",
        "the route crosses a gap in the mapped roads (straight, up to {m} m): check the way "
        "on site",
    ),
    "route_unnamed_road": ("道路", "the road"),
    "route_step": ("{turn}{name}を約 {m} m 進む", "{turn} {name} for about {m} m"),
    "route_turn_start": ("", "Walk along"),
    "route_turn_straight": ("そのまま", "Continue on"),
    "route_turn_left": ("左に曲がり、", "Turn left onto"),
    "route_turn_right": ("右に曲がり、", "Turn right onto"),
    "route_turn_back": ("引き返して", "Turn back onto"),
    "route_step_link": (
        "地図に道路のない区間を約 {m} m まっすぐ進む",
        "Cross about {m} m where no road is mapped",
    ),
    "route_step_arrive": (
        "道路を離れ、約 {m} m で{name}に着く",
        "Leave the road and walk about {m} m to {name}",
    ),
    # --- hazard map: honest card and routes (helper B)
    "card_no_data_outside": ("{title}：データがありません（この地図の範囲の外です）", "{title}: no data (outside this map's area)"),
    "card_partial_note": ("データのある災害の区域には入っていませんが、データのない災害については分かりません。", "This spot is in no zone of the hazards with data here; for the others there is no data."),
    "card_in_zone_mark": ("⚠ {text}", "⚠ {text}"),
    "card_route_button": ("道順を調べる（{kind}）", "Walking route ({kind})"),
    "card_route_offline": ("道順の案内につながりませんでした。通信を確かめるか、上の避難場所と直線距離を目安にしてください", "The route service could not be reached: check the connection, or use the shelters and distances above"),
    "card_route_status": ("道順を調べられませんでした（サーバーの応答 {status}）。上の避難場所と直線距離を目安にしてください", "The way could not be found (the server answered {status}): use the shelters and distances above"),
    # --- open data downloads (publish/build/opendata.py)
    "opendata_credit": (
        "出典: {source_ja}。ライセンス: {license} ({url})",
        "Source: {source_en}. Licence: {license} ({url})",
    ),
    "opendata_readme_title": (
        "{city} オープンデータ (公開版ごとに作成。座標は経度・緯度 (CRS84))",
        "{city} open data (made with each release; coordinates are longitude/latitude, CRS84)",
    ),
    "opendata_readme_formats": (
        "形式: GeoPackage (.gpkg)、GeoJSON (.geojson)、CSV (.csv、UTF-8 BOM 付き。点は緯度・経度、線と面は WKT)",
        "Formats: GeoPackage (.gpkg), GeoJSON (.geojson), CSV (.csv, UTF-8 with BOM; points as "
        "緯度/経度 = latitude/longitude, lines and polygons as WKT)",
    ),
    "opendata_layer": (
        "{file}: opendata: は公開レイヤにだけ書けます (このレイヤは visibility: {visibility})。修正: opendata: を消す",
        "{file}: opendata: is for public layers only (this one is visibility: {visibility}). "
        "Fix: remove opendata:",
    ),
    "opendata_standard": (
        "{file}: opendata.standard '{standard}' はありません。使えるもの: {known}",
        "{file}: opendata.standard: no standard '{standard}'. Known: {known}",
    ),
    "opendata_column": (
        "{file}: opendata.columns: 列 '{column}' は{standard}にありません。使える列: {known}",
        "{file}: opendata.columns: column '{column}' is not in {standard}. Columns: {known}",
    ),
    "opendata_field": (
        "{file}: {key}: '{field}' はこのレイヤの公開項目ではありません。使えるもの: {known}",
        "{file}: {key}: '{field}' is not a public field of the layer. Known: {known}",
    ),
    "pg_pgrouting_missing": (
        "PostGIS に pgRouting を用意できません ({detail})。修正: データベース管理者が CREATE EXTENSION pgrouting を実行する (Debian: postgresql-15-pgrouting)",
        "cannot enable pgRouting in the PostGIS database ({detail}). Fix: ask the database "
        "administrator to run CREATE EXTENSION pgrouting (Debian: postgresql-15-pgrouting)",
    ),
    "mapcfg_network_layer": (
        "{file}: map.network: walk は公開された線のレイヤにだけ書けます (このレイヤ: {geometry}, "
        "visibility: {visibility})。修正: network を外す",
        "{file}: map.network: walk is for public line layers only (this one: {geometry}, "
        "visibility: {visibility}). Fix: remove network",
    ),
    "mapcfg_network_no_shelter": (
        "{file}: map.network: walk (避難場所までの徒歩経路) ですが、避難場所 (map.role: shelter) の"
        "公開レイヤがありません。修正: 避難場所のレイヤに role: shelter を書くか network を外す",
        "{file}: map.network: walk (walking routes to shelters), but no public layer has "
        "map.role: shelter. Fix: give the shelter layer role: shelter, or remove network",
    ),
    "mapcfg_routing_no_network": (
        "config/project.yml: publish.routing がありますが、map.network: walk のレイヤがありません。"
        "修正: 歩ける道路のレイヤ (layers/<id>.yml) の map に network: walk を書く",
        "config/project.yml: publish.routing is set but no layer says map.network: walk. "
        "Fix: write network: walk in the map block of the road layer people walk on",
    ),
    "mapcfg_place_layer": (
        "config/project.yml: publish.search.place_layers の '{layer}' は地名になる公開レイヤでは"
        "ありません (公開され map.label_field があるレイヤ)。使えるもの: {known}",
        "config/project.yml: publish.search.place_layers names '{layer}', which is not a public "
        "layer with map.label_field. Known: {known}",
    ),
    # --- change feed (publish/build/changes.py)
    "link_download": ("ダウンロード ({format}): {file}", "Download ({format}): {file}"),
    "link_download_standard": (
        "ダウンロード (自治体標準オープンデータセット, {format}): {file}",
        "Download (municipal standard open data set, {format}): {file}",
    ),
    "oas_changes_summary": ("公開版の間の変更 (追加・削除・変更された地物)", "Changes between releases (features added, removed, changed)"),
    "oas_changes_description": (
        "since の日 (UTC) 以降に公開された版で追加・削除・変更された地物の ID を、レイヤごとに返します。bbox を指定すると、その範囲にかかる地物だけです (削除された地物は削除前の位置)",
        "Ids of the features added, removed or changed by the releases published since the "
        "given day (UTC), per layer; with bbox, only features meeting that box (a removed one "
        "where it was)",
    ),
    "oas_changes_since": ("この日 (YYYY-MM-DD, UTC) 以降の変更", "changes since this day (YYYY-MM-DD, UTC)"),
    "oas_changes_bbox": ("範囲: 西,南,東,北 (経度・緯度)", "box: minlon,minlat,maxlon,maxlat"),
    "oas_changes_layers": ("レイヤ (カンマ区切り)。省略時はすべて", "layers (comma separated); all if omitted"),
    "oas_changes_200": ("レイヤごとの変更", "changes per layer"),
    "oas_changes_400": ("パラメータの誤り", "invalid parameter"),
    "page_walk_route": ("避難場所までの徒歩経路 (OGC API - Processes)", "Walking routes to shelters (OGC API - Processes)"),
    "page_opendata": ("オープンデータ", "Open data"),
    "page_opendata_text": (
        "公開しているレイヤを GeoPackage・GeoJSON・CSV (Excel で開ける UTF-8 BOM 付き) でダウンロードできます。公開版ごとに作り直しています。出典とライセンスは各ファイルと README に記載しています",
        "Every published layer as GeoPackage, GeoJSON and CSV (UTF-8 with BOM, opens in "
        "Excel), made again with each release. Sources and licences are in each file and in "
        "the README",
    ),
    "page_downloads": ("ダウンロード", "Downloads"),
    "page_changes": ("変更の記録", "Change feed"),
    "page_changes_text": (
        "公開版ごとに、前の版から追加・削除・変更された地物を記録しています (Atom / JSON)。日付と範囲を指定して問い合わせることもできます",
        "Each release records the features added, removed and changed since the previous one "
        "(Atom / JSON); ask for the changes since a day, in a box, through the API",
    ),
    "page_changes_since": ("この日以降", "Since"),
    "page_changes_go": ("変更を見る", "Show changes"),
    "page_changes_counts": ("今回の版: 追加 {added}・削除 {removed}・変更 {changed}", "this release: {added} added, {removed} removed, {changed} changed"),
    "changes_history_from": (
        "変更の記録は {first} の公開版から始まります。それより前の変更は含まれていません",
        "the change record starts with the release of {first}; earlier changes are not included",
    ),
    "err_changes_since": (
        "since '{value}' は日付ではありません。修正: since=2026-04-01 のように YYYY-MM-DD で書く",
        "since '{value}' is not a date. Fix: write it as YYYY-MM-DD, e.g. since=2026-04-01",
    ),
    "err_changes_bbox": (
        "bbox '{value}' は範囲ではありません。修正: bbox=西,南,東,北 (経度・緯度) の4つの数",
        "bbox '{value}' is not a box. Fix: bbox=minlon,minlat,maxlon,maxlat (four numbers)",
    ),
    "err_changes_layers": (
        "レイヤ '{layer}' は公開されていません。使えるもの: {known}",
        "layer '{layer}' is not published. Known: {known}",
    ),
    "err_changes_param": (
        "パラメータ '{name}' は使えません。使えるもの: since, bbox, layers",
        "parameter '{name}' is not supported. Use: since, bbox, layers",
    ),
    "changes_feed_title": ("{ja_title} の変更", "Changes to {en_title}"),
    "changes_entry_title": (
        "公開版 {release}: 追加 {added}・削除 {removed}・変更 {changed}",
        "release {release}: {added} added, {removed} removed, {changed} changed",
    ),
    "changes_added": ("追加", "Added"),
    "changes_removed": ("削除", "Removed"),
    "changes_changed": ("変更", "Changed"),
    "changes_more": (" ほか {n} 件", " and {n} more"),
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
    "SWAPPED_AXES": ("座標の軸が入れ替わっている", "coordinate axes swapped (lat/lon or X/Y)"),
    "OUTSIDE_DATUM_GRID": ("測地系変換グリッドの範囲外", "outside the datum grid (cannot convert)"),
    "TRUNCATED_TEXT": ("文字列が項目幅いっぱい (切れている恐れ)",
                       "text fills the DBF field width (probably cut)"),
}

#: What to check first when a reason dominates a layer's quarantine (the budget message).
REASON_HINTS: dict[str, tuple[str, str]] = {
    "SWAPPED_AXES": ("ソースの axis_order を確認", "check the source's axis_order"),
    "OUTSIDE_DATUM_GRID": ("ソースの crs: と config/project.yml の transforms (グリッドの outside:)",
                           "the source's crs: and the grids' outside: in config/project.yml"),
    "TRANSFORM_FAILED": ("ソースの crs:", "the source's crs:"),
    "OUTSIDE_BOUNDARY": ("ソースの crs: (系番号・測地系)", "the source's crs: (zone and datum)"),
    "NULL_GEOMETRY": ("図形付きで出力されているか", "that the export includes geometry"),
    "MISSING_REQUIRED": ("from: / rename: の列名", "the column names in from:/rename:"),
    "BAD_VALUE": ("type: と normalize:", "type: and normalize:"),
    "UNKNOWN_CODE": ("コード表の aliases", "the code list's aliases"),
    "JOIN_UNMATCHED": ("結合キーの正規化 (normalize:)", "the join keys' normalize:"),
    "MISSING_REFERENCE": ("参照先レイヤの ID", "the ids of the referenced layer"),
    "DUPLICATE_ID": ("id_field (複合 ID: id_field: [a, b])",
                     "id_field (composite ids: id_field: [a, b])"),
}


#: Japanese catalogue for the English strings of pygeoapi's own HTML templates (msgid -> ja):
#: pygeoapi ships no ``ja`` locale (and its wheel no compiled catalogues), so each release
#: compiles this table into ``locale/ja/LC_MESSAGES/messages.mo`` (publish.build.apiconfig).
PYGEOAPI_UI_JA: dict[str, str] = {
    "text_direction": "ltr",  # pygeoapi puts this msgid in <html dir="...">
    "Home": "ホーム",
    "Skip to content": "本文へ移動",  # publish/templates/pygeoapi/_base.html
    "Processes": "処理",
    "Collections": "データ一覧",
    "Collection": "データ",
    "Conformance": "適合クラス",
    "Items": "地物",
    "Items in this collection": "このデータの地物数",
    "Browse Items": "地物を見る",
    "Browse": "見る",
    "Browse through the items of": "地物を見る:",
    "Queryables": "絞り込み項目",
    "Display Queryables": "絞り込み項目を表示",
    "Display Queryables of": "絞り込み項目:",
    "Schema": "スキーマ",
    "Display Schema": "スキーマを表示",
    "Display Schema of": "スキーマ:",
    "Prev": "前へ",
    "Next": "次へ",
    "Limit": "表示件数",
    "default": "既定",
    "Warning: Higher limits not recommended!": "注意: 件数を増やすと表示が遅くなります",
    "No items": "地物がありません",
    "Name": "名称",
    "Description": "説明",
    "Links": "リンク",
    "License": "ライセンス",
    "Exception": "エラー",
    "Value": "値",
    "Property": "項目",
    "URL": "URL",
    "Terms of service": "利用規約",
    "Telephone": "電話",
    "Fax": "FAX",
    "Email": "メール",
    "Hours": "受付時間",
    "Contact point": "問い合わせ先",
    "Contact instructions": "問い合わせ方法",
    "Contact URL": "問い合わせ URL",
    "Address": "住所",
    "Provider": "提供者",
    "Documentation": "説明書",
    "Swagger UI": "Swagger UI",
    "ReDoc": "ReDoc",
    "OpenAPI Document": "OpenAPI 文書",
    "API Definition": "API 定義",
    "View the collections in this service": "このサービスのデータ一覧を見る",
    "View the conformance classes of this service": "このサービスの適合クラスを見る",
    "Data collections in this service": "このサービスのデータ",
    "Reference Systems": "座標参照系",
    "Storage CRS": "格納座標系",
    "CRS": "座標系",
    "Epoch": "元期",
    "Powered by ": "使用ソフトウェア: ",
    "json": "JSON",
    "jsonld": "JSON-LD",
    "This document as JSON": "この文書 (JSON)",
    "This document as GeoJSON": "この文書 (GeoJSON)",
    "This document as HTML": "この文書 (HTML)",
    "Items (next)": "地物 (次)",
    "Items (prev)": "地物 (前)",
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
