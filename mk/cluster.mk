# Laptop cluster for `skaffold dev` / `skaffold run -p loadtest` (included from the Makefile).
# kind with Calico (enforces NetworkPolicy) and metrics-server (feeds the HPAs).
# Needs docker, kind and kubectl on PATH; downloads the pinned manifests below.
KIND ?= kind
KUBECTL ?= kubectl
KIND_CLUSTER ?= taskflow
# Empty: kind's default node image for the installed kind release.
KIND_NODE_IMAGE ?=
CALICO_VERSION ?= v3.29.1
METRICS_SERVER_VERSION ?= v0.7.2
# `make cnpg`: the CloudNativePG operator the ha overlay is written for (its Cluster CRD is
# vendored in tests/deploy/schemas/cnpg/ at the same release).
CNPG_VERSION ?= 1.30.0
CNPG_MANIFEST := https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/release-$(basename $(CNPG_VERSION))/releases/cnpg-$(CNPG_VERSION).yaml
CALICO_MANIFEST := https://raw.githubusercontent.com/projectcalico/calico/$(CALICO_VERSION)/manifests/calico.yaml
METRICS_SERVER_MANIFEST := https://github.com/kubernetes-sigs/metrics-server/releases/download/$(METRICS_SERVER_VERSION)/components.yaml
CLUSTER_CONTEXT := kind-$(KIND_CLUSTER)

# `make cluster KIND_CONFIG=deploy/kind/cluster-ha.yaml`: three workers for the ha overlay.
KIND_CONFIG ?= deploy/kind/cluster.yaml

.PHONY: cluster cluster-delete cnpg

cluster:
	@command -v $(KIND) >/dev/null || { echo "kind not found: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"; exit 1; }
	@command -v $(KUBECTL) >/dev/null || { echo "kubectl not found"; exit 1; }
	@if $(KIND) get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)'; then \
		echo "kind cluster $(KIND_CLUSTER) exists"; \
	else \
		$(KIND) create cluster --name $(KIND_CLUSTER) --config $(KIND_CONFIG) \
			$(if $(KIND_NODE_IMAGE),--image $(KIND_NODE_IMAGE)) --wait 120s; \
	fi
	$(KUBECTL) --context $(CLUSTER_CONTEXT) apply -f $(CALICO_MANIFEST)
	$(KUBECTL) --context $(CLUSTER_CONTEXT) -n kube-system rollout status daemonset/calico-node --timeout=300s
	$(KUBECTL) --context $(CLUSTER_CONTEXT) apply -f $(METRICS_SERVER_MANIFEST)
	@# kind's kubelet certificates carry no IP SANs: dev clusters only, never production.
	$(KUBECTL) --context $(CLUSTER_CONTEXT) -n kube-system patch deployment metrics-server --type=json \
		-p '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--kubelet-insecure-tls"}]'
	$(KUBECTL) --context $(CLUSTER_CONTEXT) -n kube-system rollout status deployment/metrics-server --timeout=300s
	$(KUBECTL) --context $(CLUSTER_CONTEXT) wait --for=condition=Ready nodes --all --timeout=300s
	@echo "cluster ready: kubectl context $(CLUSTER_CONTEXT); next: skaffold dev"

# Server-side apply: the CRDs are too large for the client-side last-applied annotation.
cnpg:
	$(KUBECTL) --context $(CLUSTER_CONTEXT) apply --server-side -f $(CNPG_MANIFEST)
	$(KUBECTL) --context $(CLUSTER_CONTEXT) -n cnpg-system rollout status deployment/cnpg-controller-manager --timeout=300s

cluster-delete:
	$(KIND) delete cluster --name $(KIND_CLUSTER)
