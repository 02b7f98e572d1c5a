"""The web component: the live dashboard, its server push and the Prometheus metrics, over HTTP."""
