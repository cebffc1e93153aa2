"""The admin listener: Prometheus metrics, a JSON API and a live dashboard, served by the
supervisor process (never by a process that carries traffic). docs/admin.md."""
