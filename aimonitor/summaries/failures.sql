-- Failure groups per hour (aimonitor/summaries/failures.py). Sections are named by
-- "-- name:" lines; {placeholders} are filled in by the module, %(params)s by the driver.

-- name: refresh
-- CTEs of aimonitor.rollup's refresh statement, over its "fresh" calls (the hours
-- closing now and the late calls): each failure's signature is computed once, here.
-- The pending alerts among them are added to their groups' counts and to the hour and
-- site's checksum: both sums, so they stay in step (or out of step) together.
fresh_failures AS (
    SELECT created_at, id, site_id, app_type, status, signature, {group_hash} AS group_hash,
           pending
    FROM (SELECT created_at, id, site_id, app_type, status, {signature} AS signature,
                 alert_status IS NULL OR alert_status = 'pending' AS pending
          FROM fresh WHERE {failed}) f
), failure_groups AS (
    INSERT INTO {failure_rollup} AS f (hour, site_id, app_type, status, signature, group_hash,
                                       calls, first_seen, last_seen, pending)
    SELECT date_trunc('hour', created_at, %(zone)s), site_id, app_type, status, signature,
           group_hash, count(*), min(created_at), max(created_at), count(*) FILTER (WHERE pending)
    FROM fresh_failures GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (hour, site_id, app_type, status, signature) DO UPDATE SET
        calls = f.calls + excluded.calls,
        first_seen = least(f.first_seen, excluded.first_seen),
        last_seen = greatest(f.last_seen, excluded.last_seen),
        pending = f.pending + excluded.pending
), failure_pending AS (
    INSERT INTO {pending_hour} AS p (hour, site_id, pending, id_sum, id_xor)
    SELECT date_trunc('hour', created_at, %(zone)s), site_id, {checksum}
    FROM fresh_failures WHERE pending GROUP BY 1, 2
    ON CONFLICT (hour, site_id) DO UPDATE SET
        pending = p.pending + excluded.pending,
        id_sum = p.id_sum + excluded.id_sum,
        id_xor = p.id_xor # excluded.id_xor
), failure_calls AS (
    INSERT INTO {failure_call} (created_at, run_id, group_hash)
    SELECT created_at, id, group_hash FROM fresh_failures
    ON CONFLICT (created_at, run_id) DO NOTHING
),

-- name: summed
-- A window's closed hours: the groups per site and bin of hours (%(bins)s), as summed (by
-- hash, no names), with their pending counts as last counted (the hours and sites that
-- changed since are corrected by changed_pending).
SELECT group_hash, NULL::varchar, NULL::varchar, NULL::varchar, site_id,
       width_bucket(hour, %(bins)s::timestamptz[]), sum(calls), sum(pending), min(first_seen),
       max(last_seen)
FROM {failure_rollup}
WHERE hour >= %(a)s AND hour < %(b)s {filters}
GROUP BY group_hash, site_id, 6

-- name: raw
-- The raw failures of a window's open edges ({late}: or its late calls), grouped alike
-- (with their names) with their pending count. The signature is computed once per
-- distinct message of a group and hour, not once per call; messages compare bytewise.
SELECT {group_hash}, app_type, status, signature, site_id,
       width_bucket(hour, %(bins)s::timestamptz[]), sum(calls), sum(pending), min(first_seen),
       max(last_seen)
FROM (SELECT app_type, status, {signature} AS signature, site_id, hour, calls, pending,
             first_seen, last_seen
      FROM (SELECT app_type, status, error_message COLLATE "C" AS error_message, site_id,
                   date_trunc('hour', created_at, %(zone)s) AS hour, count(*) AS calls,
                   count(*) FILTER (WHERE alert_status IS NULL OR alert_status = 'pending')
                       AS pending,
                   min(created_at) AS first_seen, max(created_at) AS last_seen
            FROM {runs}
            WHERE {failed} AND created_at >= %(a)s AND created_at < %(b)s {late} {filters}
            GROUP BY 1, 2, 3, 4, 5) per_message) per_signature
GROUP BY app_type, status, signature, site_id, 6

-- name: live_pending
-- The pending alerts of a window's closed hours, as the checksum the summaries keep
-- (FailurePendingHour), grouped by {by}: read from the pending-alerts index alone. The
-- status and alert_status tests are the partial index's own predicate (ai_tables.sql).
SELECT {by}, {checksum}
FROM {runs}
WHERE {failed} AND (alert_status IS NULL OR alert_status = 'pending')
  AND created_at >= %(a)s AND created_at < %(b)s AND id <= %(max_id)s {site_filter}
GROUP BY {group_by}

-- name: changed
-- The hours and sites whose pending alerts are no longer those last counted, found by
-- comparing checksums (how many, and two sums of hashes of their ids), live and stored:
-- first per site over the whole window (no hour computed), then per hour for the sites
-- that differ.
WITH changed_sites AS (
    SELECT site_id
    FROM ({live_per_site}) live
    FULL JOIN (SELECT site_id, sum(pending)::bigint AS pending, sum(id_sum)::bigint AS id_sum,
                      bit_xor(id_xor) AS id_xor
               FROM {pending_hour} WHERE hour >= %(a)s AND hour < %(b)s {site_filter}
               GROUP BY site_id) stored USING (site_id)
    WHERE (live.pending, live.id_sum, live.id_xor)
          IS DISTINCT FROM (stored.pending, stored.id_sum, stored.id_xor)
)
SELECT hour, site_id, live.pending, live.id_sum, live.id_xor
FROM ({live_per_hour}) live
FULL JOIN (SELECT hour, site_id, pending, id_sum, id_xor FROM {pending_hour}
           WHERE hour >= %(a)s AND hour < %(b)s {changed_sites}) stored USING (hour, site_id)
WHERE (live.pending, live.id_sum, live.id_xor)
      IS DISTINCT FROM (stored.pending, stored.id_sum, stored.id_xor)

-- name: changed_pending
-- The pending alerts of the changed hours and sites by group: for each changed hour and
-- site (LATERAL: one small index range each, however few or many the planner expects),
-- the site-pending-alerts index joined with each summed failure's group. A local hour is
-- at most 1.5 hours long (a DST change of 30 minutes), hence the 2-hour bound before the
-- exact test.
SELECT pending.group_hash, ch.hour, ch.site_id, pending.n
FROM changed ch
CROSS JOIN LATERAL (
    SELECT c.group_hash, count(*) AS n
    FROM {runs} r
    JOIN {failure_call} c ON c.created_at = r.created_at AND c.run_id = r.id
    WHERE r.site_id = ch.site_id AND r.{failed}
      AND (r.alert_status IS NULL OR r.alert_status = 'pending')
      AND r.created_at >= ch.hour AND r.created_at < ch.hour + interval '2 hours'
      AND c.created_at >= ch.hour AND c.created_at < ch.hour + interval '2 hours'
      AND date_trunc('hour', r.created_at, %(zone)s) = ch.hour AND r.id <= %(max_id)s
    GROUP BY c.group_hash
) pending

-- name: pending_correction
-- What the changed hours and sites add to the stored pending counts: their live count,
-- less the stored one.
SELECT group_hash, n FROM ({changed_pending}) live
UNION ALL
-- (ANY(ARRAY(...)): the stored counts of the changed hours are looked up by index.)
SELECT f.group_hash, -f.pending
FROM changed JOIN {failure_rollup} f USING (hour, site_id)
WHERE f.hour = ANY(ARRAY(SELECT hour FROM changed))

-- name: sync
-- Count again the pending alerts of the closed hours and sites that changed since they
-- were last counted (the worker's pass; manage.py rollup_runs), and keep their checksum:
-- at most %(most)s of them, the newest first (the rest stay read live until a next pass).
-- Run with the rollups' state row locked: a refresh, which adds to both, skips its turn.
WITH all_changed AS (
    {changed}
), changed AS (
    SELECT * FROM all_changed ORDER BY hour DESC, site_id LIMIT %(most)s
), counted AS (
    {changed_pending}
), recounted AS (
    -- (The planner cannot know how few the changed hours are: ANY(ARRAY(...)) has it
    -- look them up by index rather than read every summed hour.)
    SELECT f.id, coalesce(counted.n, 0) AS pending
    FROM {failure_rollup} f
    JOIN changed USING (hour, site_id)
    LEFT JOIN counted ON counted.hour = f.hour AND counted.site_id = f.site_id
                     AND counted.group_hash = f.group_hash
    WHERE f.hour = ANY(ARRAY(SELECT hour FROM changed))
      AND f.pending IS DISTINCT FROM coalesce(counted.n, 0)
), counts AS (
    UPDATE {failure_rollup} f SET pending = recounted.pending
    FROM recounted
    WHERE f.id = recounted.id AND f.id = ANY(ARRAY(SELECT id FROM recounted))
), kept AS (
    INSERT INTO {pending_hour} AS p (hour, site_id, pending, id_sum, id_xor)
    SELECT hour, site_id, pending, id_sum, id_xor FROM changed WHERE pending IS NOT NULL
    ON CONFLICT (hour, site_id) DO UPDATE SET
        pending = excluded.pending, id_sum = excluded.id_sum, id_xor = excluded.id_xor
), emptied AS (
    DELETE FROM {pending_hour} p USING changed
    WHERE p.hour = changed.hour AND p.site_id = changed.site_id AND changed.pending IS NULL
)
SELECT (SELECT count(*) FROM changed), (SELECT count(*) FROM all_changed)

-- name: groups
-- The window's groups from the parts above, keyed by their hash: largest first, then the
-- one seen last; their names, the pending counts of changed hours corrected, their counts
-- in each bin of hours (%(bins)s: the first hour of each) and the newest message: of the
-- group's calls created at its last_seen (in scope), the one with the largest id. Summed
-- parts carry no names (narrow rows): a group's names come from its raw parts, else from
-- its summed hour of last_seen.
WITH changed AS (
    {changed}
), parts (group_hash, app_type, status, signature, site_id, bin, calls, pending,
          first_seen, last_seen) AS (
    {failures}
), by_site AS (
    SELECT group_hash, site_id, sum(calls) AS calls, sum(pending) AS pending,
           min(first_seen) AS first_seen, max(last_seen) AS last_seen
    FROM parts GROUP BY group_hash, site_id
), groups AS (
    SELECT group_hash, sum(calls)::bigint AS count, sum(pending)::bigint AS pending,
           array_agg(site_id ORDER BY site_id) AS sites, min(first_seen) AS first_seen,
           max(last_seen) AS last_seen
    FROM by_site GROUP BY group_hash
    ORDER BY count DESC, last_seen DESC, group_hash
    LIMIT %(limit)s
), raw_names AS MATERIALIZED (
    SELECT group_hash, min(app_type COLLATE "C") AS app_type, min(status COLLATE "C") AS status,
           min(signature COLLATE "C") AS signature
    FROM parts WHERE app_type IS NOT NULL GROUP BY group_hash
), names AS (
    SELECT g.group_hash, n.app_type, n.status, n.signature
    FROM groups g CROSS JOIN LATERAL (
        SELECT app_type, status, signature FROM raw_names r WHERE r.group_hash = g.group_hash
        UNION ALL
        (SELECT app_type, status, signature FROM {failure_rollup} f
         WHERE f.hour = date_trunc('hour', g.last_seen, %(zone)s) AND f.group_hash = g.group_hash
         LIMIT 1)
        UNION ALL
        (SELECT app_type, status, signature FROM {failure_rollup} f
         WHERE f.group_hash = g.group_hash LIMIT 1)
        LIMIT 1
    ) n
), per_bin AS (
    SELECT group_hash, bin, sum(calls)::bigint AS n
    FROM parts WHERE group_hash IN (SELECT group_hash FROM groups) GROUP BY 1, 2
), binned AS (
    SELECT g.group_hash, array_agg(coalesce(p.n, 0) ORDER BY slot.bin) AS counts
    FROM groups g
    CROSS JOIN generate_series(1, cardinality(%(bins)s::timestamptz[])) slot (bin)
    LEFT JOIN per_bin p ON p.group_hash = g.group_hash AND p.bin = slot.bin
    GROUP BY g.group_hash
), pending (group_hash, n) AS (
    SELECT group_hash, sum(n)::bigint FROM ({pending}) p GROUP BY group_hash
)
SELECT n.app_type, n.status, n.signature, g.count, g.pending + coalesce(p.n, 0), g.sites,
       g.first_seen, g.last_seen,
       (SELECT r.error_message FROM {runs} r
        WHERE r.created_at = g.last_seen AND r.{failed} AND r.app_type = n.app_type
          AND r.status = n.status AND {newest_signature} = n.signature {newest_sites}
        ORDER BY r.id DESC LIMIT 1),
       b.counts
FROM groups g
JOIN names n USING (group_hash)
JOIN binned b USING (group_hash)
LEFT JOIN pending p USING (group_hash)
ORDER BY g.count DESC, g.last_seen DESC, g.group_hash
