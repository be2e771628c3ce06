"""Building and shipping images: the build context and harness wheel, the dependency lock and wheelhouse, the
image reference (tags: the one source of it), engine connection, local base images, registry login/push."""
