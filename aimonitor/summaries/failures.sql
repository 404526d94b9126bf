-- Failure groups per hour (aimonitor/summaries/failures.py). Sections are named by
-- "-- name:" lines; {placeholders} are filled in by the module, %(params)s by the driver.

-- name: refresh
-- CTEs of aimonitor.rollup's refresh statement, over its "fresh" calls (the hours
-- closing now and the late calls): each failure's signature is computed once, here.
fresh_failures AS (
    SELECT created_at, id, site_id, app_type, status, signature, {group_hash} AS group_hash
    FROM (SELECT created_at, id, site_id, app_type, status, {signature} AS signature
          FROM fresh WHERE {failed}) f
), failure_groups AS (
    INSERT INTO {failure_rollup} AS f (hour, site_id, app_type, status, signature, group_hash,
                                       calls, first_seen, last_seen, newest_id)
    SELECT date_trunc('hour', created_at, %(zone)s), site_id, app_type, status, signature,
           group_hash, count(*), min(created_at), max(created_at),
           (array_agg(id ORDER BY created_at DESC, id DESC))[1]
    FROM fresh_failures GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (hour, site_id, app_type, status, signature) DO UPDATE SET
        calls = f.calls + excluded.calls,
        first_seen = least(f.first_seen, excluded.first_seen),
        last_seen = greatest(f.last_seen, excluded.last_seen),
        newest_id = CASE WHEN (excluded.last_seen, excluded.newest_id) > (f.last_seen, f.newest_id)
                         THEN excluded.newest_id ELSE f.newest_id END
), failure_calls AS (
    INSERT INTO {failure_call} (created_at, run_id, group_hash)
    SELECT created_at, id, group_hash FROM fresh_failures
    ON CONFLICT (created_at, run_id) DO NOTHING
),

-- name: summed
-- A window's closed hours: the groups per hour and site, as summed (pending: below).
SELECT group_hash, app_type, status, signature, site_id, hour, calls, 0, first_seen,
       last_seen, newest_id
FROM {failure_rollup}
WHERE hour >= %(a)s AND hour < %(b)s {filters}

-- name: raw
-- The raw failures of a window's open edges ({late}: or its late calls), grouped alike
-- with their pending count. The signature is computed once per distinct message of a
-- group and hour, not once per call.
SELECT {group_hash}, app_type, status, signature, site_id, hour, sum(calls), sum(pending),
       min(first_seen), max(last_seen),
       (array_agg(newest_id ORDER BY last_seen DESC, newest_id DESC))[1]
FROM (SELECT app_type, status, {signature} AS signature, site_id, hour, calls, pending,
             first_seen, last_seen, newest_id
      FROM (SELECT app_type, status, error_message, site_id,
                   date_trunc('hour', created_at, %(zone)s) AS hour, count(*) AS calls,
                   count(*) FILTER (WHERE alert_status IS NULL OR alert_status = 'pending')
                       AS pending,
                   min(created_at) AS first_seen, max(created_at) AS last_seen,
                   (array_agg(id ORDER BY created_at DESC, id DESC))[1] AS newest_id
            FROM {runs}
            WHERE {failed} AND created_at >= %(a)s AND created_at < %(b)s {late} {filters}
            GROUP BY 1, 2, 3, 4, 5) per_message) per_signature
GROUP BY app_type, status, signature, site_id, hour

-- name: summed_pending
-- The pending alerts of closed hours by group: the pending-alerts index joined with each
-- summed failure's group (no signature computed). The status and alert_status tests are
-- the partial index's own predicate (ai_tables.sql), so the planner can use it.
SELECT c.group_hash, count(*)
FROM {runs} r JOIN {failure_call} c ON c.created_at = r.created_at AND c.run_id = r.id
WHERE {failed}
  AND (r.alert_status IS NULL OR r.alert_status = 'pending')
  AND r.created_at >= %(a)s AND r.created_at < %(b)s AND r.id <= %(planned_max)s
  AND c.created_at >= %(a)s AND c.created_at < %(b)s {site_filter}
GROUP BY 1

-- name: groups
-- The window's groups from the parts above, keyed by their hash: largest first, then the
-- one seen last; their names, the newest message (read by id) and the pending counts of
-- closed hours added. Every step hashes (the newest call is the largest [created_at in
-- microseconds, id] array), names compare bytewise: no sort of the parts.
WITH parts (group_hash, app_type, status, signature, site_id, hour, calls, pending,
            first_seen, last_seen, newest_id) AS (
    {failures}
), by_site AS (
    SELECT group_hash, site_id, sum(calls) AS calls, sum(pending) AS pending,
           min(first_seen) AS first_seen, max(last_seen) AS last_seen,
           max(ARRAY[(extract(epoch FROM last_seen) * 1000000)::bigint, newest_id]) AS newest
    FROM parts GROUP BY group_hash, site_id
), groups AS (
    SELECT group_hash, sum(calls)::bigint AS count, sum(pending)::bigint AS pending,
           array_agg(site_id ORDER BY site_id) AS sites, min(first_seen) AS first_seen,
           max(last_seen) AS last_seen, (max(newest))[2] AS newest_id
    FROM by_site GROUP BY group_hash
    ORDER BY count DESC, last_seen DESC, group_hash
    LIMIT %(limit)s
), names AS (
    SELECT group_hash, min(app_type COLLATE "C") AS app_type, min(status COLLATE "C") AS status,
           min(signature COLLATE "C") AS signature
    FROM parts WHERE group_hash IN (SELECT group_hash FROM groups) GROUP BY group_hash
), hourly AS (
    SELECT group_hash, array_agg(hour ORDER BY hour) AS hours, array_agg(n ORDER BY hour) AS counts
    FROM (SELECT group_hash, hour, sum(calls)::bigint AS n FROM parts
          WHERE group_hash IN (SELECT group_hash FROM groups) GROUP BY 1, 2) per_hour
    GROUP BY group_hash
), pending (group_hash, n) AS (
    SELECT group_hash, sum(n)::bigint
    FROM ({pending}) p (group_hash, n) GROUP BY group_hash
)
SELECT n.app_type, n.status, n.signature, g.count, g.pending + coalesce(p.n, 0), g.sites,
       g.first_seen, g.last_seen,
       (SELECT r.error_message FROM {runs} r
        WHERE r.id = g.newest_id AND r.created_at = g.last_seen),
       h.hours, h.counts
FROM groups g
JOIN names n USING (group_hash)
JOIN hourly h USING (group_hash)
LEFT JOIN pending p USING (group_hash)
ORDER BY g.count DESC, g.last_seen DESC, g.group_hash
