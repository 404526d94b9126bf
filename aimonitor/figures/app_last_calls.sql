SELECT apps.app_type, last_call.status, last_call.created_at, last_failure.created_at
FROM unnest(%(apps)s::text[]) AS apps(app_type)
LEFT JOIN LATERAL (
    SELECT r.status, r.created_at FROM {table} r
    WHERE r.app_type = apps.app_type AND r.created_at >= %(since)s AND r.created_at < %(until)s
      {scope}
    ORDER BY r.created_at DESC LIMIT 1
) last_call ON true
LEFT JOIN LATERAL (
    SELECT r.created_at FROM {table} r
    WHERE r.app_type = apps.app_type AND r.created_at >= %(since)s AND r.created_at < %(until)s
      AND r.status IN ('failed', 'timeout', 'circuit_open') {scope}
    ORDER BY r.created_at DESC LIMIT 1
) last_failure ON true
