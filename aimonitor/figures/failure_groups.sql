WITH failures AS (
    SELECT id, app_type, status, site_id, created_at, alert_status, error_message,
           {signature} AS signature
    FROM {runs}
    WHERE status = ANY(%(statuses)s) AND created_at >= %(since)s AND created_at < %(until)s
      {scope}
), groups AS (
    SELECT app_type, status, signature, count(*) AS count,
           count(*) FILTER (WHERE alert_status IS NULL OR alert_status = 'pending') AS pending,
           array_agg(DISTINCT site_id ORDER BY site_id) AS sites,
           min(created_at) AS first_seen, max(created_at) AS last_seen
    FROM failures GROUP BY app_type, status, signature
    ORDER BY count DESC, last_seen DESC, app_type, status, signature
    LIMIT %(limit)s
), newest AS (
    SELECT DISTINCT ON (app_type, status, signature) app_type, status, signature, error_message
    FROM failures ORDER BY app_type, status, signature, created_at DESC, id DESC
), hourly AS (
    SELECT app_type, status, signature, array_agg(hour ORDER BY hour) AS hours,
           array_agg(n ORDER BY hour) AS counts
    FROM (SELECT app_type, status, signature, date_trunc('hour', created_at, %(zone)s) AS hour,
                 count(*) AS n
          FROM failures GROUP BY 1, 2, 3, 4) per_hour
    GROUP BY app_type, status, signature
)
SELECT g.app_type, g.status, g.signature, g.count, g.pending, g.sites, g.first_seen,
       g.last_seen, n.error_message, h.hours, h.counts
FROM groups g
JOIN newest n USING (app_type, status, signature)
JOIN hourly h USING (app_type, status, signature)
ORDER BY g.count DESC, g.last_seen DESC, g.app_type, g.status, g.signature
