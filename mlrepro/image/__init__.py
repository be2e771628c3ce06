"""Building and shipping images: engine connection, local base images, registry login/push/pull."""
