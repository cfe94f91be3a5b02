# The argocd-rbd-dr image, for people who build with Docker (BuildKit):
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#     -t ghcr.io/rbd-dr/argocd-rbd-dr:v0.1.0 .
#
# `make image` builds the same file tree without a Docker engine (hack/image).
# The image holds one static binary and nothing else: no shell, no libc.
#   /usr/local/bin/argocd-rbd-dr               0755 root  the plugin; the ENTRYPOINT for the hook Jobs
#   /home/argocd/cmp-server/config/plugin.yaml 0644 root  the ConfigManagementPlugin
#   /home/argocd, /home/argocd/cmp-server           999   the cmp-server's socket and plugins dir
#   /tmp                                       1777       scratch space for the Jobs
#   /etc/passwd, /etc/group                               root and argocd (999)
# The sidecar itself runs /var/run/argocd/argocd-cmp-server, which Argo CD's
# copyutil initContainer puts in the shared var-files volume.

ARG GO_VERSION=1.26
ARG VERSION=v0.1.0-dev

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG VERSION
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY . .
# -buildvcs=false: the version comes from VERSION, and the build context may
# hold a .git that is a worktree link go cannot follow.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=${VERSION}" \
      -o /rootfs/usr/local/bin/argocd-rbd-dr ./cmd/cmp
# The file tree of the final stage, made here because scratch has no shell.
# /rootfs is root's; /rootfs-home is copied with --chown=999:999; modes survive COPY.
RUN set -eu; \
    mkdir -p /rootfs/etc /rootfs/home /rootfs/tmp /rootfs-home/argocd/cmp-server /rootfs-config; \
    chmod 1777 /rootfs/tmp; \
    chmod 0755 /rootfs/usr/local/bin/argocd-rbd-dr; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nargocd:x:999:999:argocd:/home/argocd:/sbin/nologin\n' >/rootfs/etc/passwd; \
    printf 'root:x:0:\nargocd:x:999:\n' >/rootfs/etc/group; \
    chmod 0644 /rootfs/etc/passwd /rootfs/etc/group; \
    install -m 0644 plugin/plugin.yaml /rootfs-config/plugin.yaml

FROM scratch
ARG VERSION
# Order matters: /home exists (root's) before argocd/ is copied into it as 999's,
# and config/ is created inside it afterwards as root's.
COPY --from=build /rootfs/ /
COPY --from=build --chown=999:999 /rootfs-home/ /home/
COPY --from=build /rootfs-config/ /home/argocd/cmp-server/config/
ENV PATH=/usr/local/bin HOME=/home/argocd
LABEL org.opencontainers.image.source="https://github.com/rbd-dr/argocd-rbd-dr" \
      org.opencontainers.image.title="argocd-rbd-dr" \
      org.opencontainers.image.version="${VERSION}"
# Argo CD's argocd user: the sidecar and the hook Jobs run as 999, never as root.
USER 999:999
WORKDIR /home/argocd
ENTRYPOINT ["/usr/local/bin/argocd-rbd-dr"]
