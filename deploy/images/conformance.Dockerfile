# The conformance suite's image, built by `deploy/images/build.sh conformance`
# from a root filesystem it stages: ferry-conformance, the docker CLI (managed
# mode starts the driver image as a sibling container through the mounted
# Docker socket), a static busybox for the profiles' shell hooks, and a
# non-root user. No base image: nothing is pulled.
FROM scratch
LABEL org.opencontainers.image.title="ferry-conformance" \
      org.opencontainers.image.description="Conformance suite for Argo Workflows artifact drivers" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY rootfs/ /
# The driver images run as 65532 too: the same user may read the driver's
# /proc entries (memory, descriptors) when the run shares the host's PIDs.
USER 65532:65532
ENV HOME=/tmp DOCKER_CONFIG=/tmp/.docker PATH=/usr/local/bin:/bin
# The run's work directory is shared with the driver: a volume, so a sibling
# driver container can mount the same one.
VOLUME /tmp
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/ferry-conformance"]
