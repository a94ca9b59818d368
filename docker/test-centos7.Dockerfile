# syntax=docker/dockerfile:1
#
# A CentOS 7 server as operators have it: glibc 2.17, the base python3 (3.6) and Software
# Collections' rh-python38. Runs docker/test-centos7.sh against the artifact at /work/site.sfx
# (bind-mount it, or COPY it in a derived image). From the repository root:
#
#   docker build -f docker/test-centos7.Dockerfile -t pysfx-test-centos7 docker
#   docker run --rm -v "$PWD/examples/out/site.sfx:/work/site.sfx:ro" pysfx-test-centos7
#
# See docker/README.md.
FROM centos:7

# CentOS 7 reached its end of life on 2024-06-30: mirrorlist.centos.org no longer answers and
# mirror.centos.org no longer carries 7, so yum reads the frozen tree on vault.centos.org instead
# (comment out mirrorlist, enable baseurl, rewrite the host). centos-release-scl (from extras)
# brings its own repo files pointing at the old hosts, hence the second pass.
RUN set -eux; \
    to_vault() { \
        sed -i -e 's|^mirrorlist=|#mirrorlist=|' \
               -e 's|^#[[:space:]]*baseurl=http://mirror\.centos\.org|baseurl=http://vault.centos.org|' \
               -e 's|http://mirror\.centos\.org|http://vault.centos.org|' \
               /etc/yum.repos.d/CentOS-*.repo; \
    }; \
    to_vault; \
    yum install -y centos-release-scl; \
    to_vault; \
    yum install -y python3 rh-python38-python curl; \
    yum clean all; \
    rm -rf /var/cache/yum; \
    /usr/bin/python3 --version; \
    LD_LIBRARY_PATH=/opt/rh/rh-python38/root/usr/lib64 /opt/rh/rh-python38/root/usr/bin/python3 --version

COPY test-centos7.sh /usr/local/bin/test-centos7.sh
RUN chmod 0755 /usr/local/bin/test-centos7.sh

WORKDIR /work
ENTRYPOINT ["/usr/local/bin/test-centos7.sh"]
