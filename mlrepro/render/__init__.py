"""Views of a resolved profile: the PodSpec (podspec), the JobSpec every target runs (jobspec), Kubernetes
manifests (manifests), Helm values (helm_values), the Dockerfile (dockerfile) and what a Kubernetes version
can run (compat). Nothing here builds or names images (that is mlrepro.image). Import the submodule you need."""
