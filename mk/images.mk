# Images and container tests. Included by the Makefile; expects PYTEST and the `deps` target.
#   make images                                    build tasks-api, stats-api, loadgen, web (tag :dev)
#   make images PYTHON_IMAGE=taskflow-ci/python-base:bookworm NGINX_IMAGE=taskflow-ci/nginx-base:trixie
#                                                  on the offline stand-in bases
#   make test-container                            build and run the images (tests/container)
# scripts/docker-engine.sh reuses a Docker daemon that answers, or starts one (no bridge) and
# stops it afterwards. Debian's client (/usr/bin/docker) brings BuildKit; elsewhere `docker`.
DOCKER ?= $(if $(wildcard /usr/bin/docker),/usr/bin/docker,docker)
IMAGES ?= tasks-api stats-api loadgen web
IMAGE_TAG ?= dev
PYTHON_IMAGE ?=
NGINX_IMAGE ?=
STANDIN_BASE := taskflow-ci/python-base:bookworm
NGINX_STANDIN_BASE := taskflow-ci/nginx-base:trixie

.PHONY: images test-container base-image build-images

images:
	@DOCKER=$(DOCKER) scripts/docker-engine.sh run $(MAKE) -f $(firstword $(MAKEFILE_LIST)) --no-print-directory build-images

base-image:
	@DOCKER=$(DOCKER) scripts/docker-engine.sh run scripts/base-image.sh

# Runs inside docker-engine.sh (a daemon answers); builds the stand-in base first when asked for it.
# Each Dockerfile is built from a fresh copy: Docker 20.10's CLI skips syncing a Dockerfile whose
# size and mtime match the previous build's, so tasks-api and stats-api could swap Dockerfiles.
build-images:
	@$(if $(filter $(STANDIN_BASE),$(PYTHON_IMAGE)),DOCKER=$(DOCKER) scripts/base-image.sh)
	@$(if $(filter $(NGINX_STANDIN_BASE),$(NGINX_IMAGE)),DOCKER=$(DOCKER) scripts/base-image.sh nginx)
	@set -e; staging=$$(mktemp -d); trap 'rm -rf "$$staging"' EXIT; \
	for svc in $(IMAGES); do \
	  echo "== $$svc:$(IMAGE_TAG)"; start=$$(date +%s); \
	  rm -rf "$$staging/$$svc"; mkdir "$$staging/$$svc"; \
	  cp services/$$svc/Dockerfile services/$$svc/Dockerfile.dockerignore "$$staging/$$svc/"; \
	  DOCKER_BUILDKIT=1 $(DOCKER) build --network host \
	    $(if $(PYTHON_IMAGE),--build-arg PYTHON_IMAGE=$(PYTHON_IMAGE)) \
	    $(if $(NGINX_IMAGE),--build-arg NGINX_IMAGE=$(NGINX_IMAGE)) \
	    -f "$$staging/$$svc/Dockerfile" -t $$svc:$(IMAGE_TAG) . ; \
	  echo "== $$svc:$(IMAGE_TAG) built in $$(( $$(date +%s) - start ))s"; \
	done
	@$(DOCKER) image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' \
	  $(foreach svc,$(IMAGES),--filter reference=$(svc):$(IMAGE_TAG))

test-container: deps
	$(PYTEST) -m container tests/container
