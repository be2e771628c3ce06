"""Views of a resolved profile: the PodSpec (podspec), Kubernetes manifests (manifests), Helm values
(helm_values), and the Dockerfile/build context. Import the submodule you need."""
