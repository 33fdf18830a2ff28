# MultiHeadServe container image.
#
#   docker build -t multiheadserve .                          CPU image (the default target, cpu)
#   docker build --target gpu -t multiheadserve:gpu .         CUDA image, see deploy/README.md
#   deploy/container/build.sh                                 CPU image with buildah, no registry needed
#
# Both images build the same code; the GPU one builds with -p:OnnxRuntimeGpu=true, which swaps the
# official CPU package of ONNX Runtime for its CUDA package (Microsoft.ML.OnnxRuntime.Gpu.Linux).
#
# Base images: .NET 10 ships its Linux container images on Ubuntu 24.04 "Noble" (the default
# `10.0` tag), Alpine and Azure Linux; there are no Debian-based .NET 10 images. The tags below
# name Noble explicitly so a future change of the default distro cannot silently change the apt
# package names this file relies on. Alpine is ruled out: ONNX Runtime is built against glibc.
# Every base image is a build argument, so the image can be built from a mirror or from local
# equivalents: a replacement RUNTIME_IMAGE must provide what the official one does (the runtime in
# /usr/share/dotnet with /usr/bin/dotnet, bash, and APP_UID naming a non-root user).
#
# Variants are targets, not a build argument naming a stage: `FROM stage-${ARG}` works with
# BuildKit but not with buildah, and CI builds this file with buildah. The targets:
#   cpu               (default) builds the application in SDK_IMAGE and runs it on RUNTIME_IMAGE;
#   gpu               the same with the CUDA package, on CUDA_IMAGE;
#   cpu-from-publish  takes the application from the build context instead of building it: publish/
#                     (`dotnet publish src/MultiHeadServe -c Release -r linux-x64 --self-contained false`)
#                     and models/ (with the objects members that publish composes). deploy/container/build.sh
#                     prepares that context; the image is otherwise the cpu one.
#
# The image is linux/amd64 only (the CUDA package ships x64 libraries).

ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0-noble
ARG RUNTIME_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0-noble
# GPU target only. The CUDA and cuDNN major versions must be those the CUDA package of ONNX
# Runtime is linked against: CUDA 13 and cuDNN 9 for 1.31. The runtime-gpu stage checks it and
# names any missing library.
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04

FROM ${RUNTIME_IMAGE} AS aspnet

# ---------------------------------------------------------------------------------------------
FROM ${SDK_IMAGE} AS sources
WORKDIR /src
# NuGet restore from the project files alone, so a source change does not invalidate it. The
# service project is restored rather than the solution, which would also need every test project.
COPY global.json Directory.Build.props Directory.Build.targets Directory.Packages.props .editorconfig ./
COPY src/MultiHeadServe/MultiHeadServe.csproj src/MultiHeadServe/
COPY src/MultiHeadServe.Onnx/MultiHeadServe.Onnx.csproj src/MultiHeadServe.Onnx/
COPY src/MultiHeadServe.Cli/MultiHeadServe.Cli.csproj src/MultiHeadServe.Cli/ObjectsMembers.targets src/MultiHeadServe.Cli/

# Framework-dependent for linux-x64: only the x64 native libraries are published. The CPU build
# carries libonnxruntime.so; the GPU build also its CUDA provider libraries. The models: the build
# composes the objects model's members (each head on the restored ResNet-18) into them.
FROM sources AS build-cpu
RUN dotnet restore src/MultiHeadServe/MultiHeadServe.csproj -r linux-x64
COPY src/ src/
COPY models/ models/
RUN dotnet publish src/MultiHeadServe/MultiHeadServe.csproj -c Release -r linux-x64 --self-contained false \
        --no-restore -o /app/publish \
 && test -f /app/publish/libonnxruntime.so

FROM sources AS build-gpu
RUN dotnet restore src/MultiHeadServe/MultiHeadServe.csproj -r linux-x64 -p:OnnxRuntimeGpu=true
COPY src/ src/
COPY models/ models/
RUN dotnet publish src/MultiHeadServe/MultiHeadServe.csproj -c Release -r linux-x64 --self-contained false \
        -p:OnnxRuntimeGpu=true --no-restore -o /app/publish \
 && test -f /app/publish/libonnxruntime.so \
 && test -f /app/publish/libonnxruntime_providers_cuda.so

# The application published before the image build (cpu-from-publish).
FROM scratch AS published
COPY publish/ /app/publish/
COPY models/ /src/models/

# ---------------------------------------------------------------------------------------------
# CPU runtime: ASP.NET Core on Noble. ONNX Runtime needs only glibc, libstdc++ and libgcc_s, and
# SkiaSharp's libSkiaSharp.so (published with the application) only libc, which the base image
# has; ICU is not needed (InvariantGlobalization).
#
# Application and models are owned by root, so the service cannot modify them; only /app/data,
# where the SQLite feature store lives, belongs to the service user.
FROM aspnet AS service-cpu
WORKDIR /app
RUN install -d -o "$APP_UID" -g "$APP_UID" /app/data
ENV ModelRepository__Provider=Cpu \
    ASPNETCORE_HTTP_PORTS=8080 \
    Serve__GrpcPort=8001 \
    ModelRepository__Path=/app/models \
    FeatureStore__SqlitePath=/app/data/features.db
USER $APP_UID
VOLUME ["/app/data"]
# 8080: REST (/v1, /v2, health, metrics); 8001: the Open Inference Protocol over gRPC (plain-text HTTP/2).
EXPOSE 8080 8001
# Liveness only (/healthz): readiness is the orchestrator's business (/readyz). The probe is an
# HTTP request written with bash's /dev/tcp, because the base image has no curl or wget and
# installing curl would add a dozen libraries to the image (and to every vulnerability scan) for
# one health check. It checks the status line of the first port in ASPNETCORE_HTTP_PORTS.
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
    CMD ["bash", "-c", "exec 3<>\"/dev/tcp/127.0.0.1/${ASPNETCORE_HTTP_PORTS%%[;,]*}\" && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]
ENTRYPOINT ["dotnet", "MultiHeadServe.dll"]

# ---------------------------------------------------------------------------------------------
# GPU runtime: NVIDIA's CUDA + cuDNN runtime on Ubuntu 24.04 (Noble package names) and the
# ASP.NET Core runtime copied from the official image.
FROM ${CUDA_IMAGE} AS service-gpu
ENV APP_UID=1654 \
    DOTNET_ROOT=/usr/share/dotnet \
    DOTNET_RUNNING_IN_CONTAINER=true
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libssl3t64 tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid "$APP_UID" app \
 && useradd --uid "$APP_UID" --gid "$APP_UID" --no-create-home --shell /usr/sbin/nologin app
COPY --from=aspnet /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
# Fail the build, not the first start, when the base image lacks a CUDA or cuDNN library the CUDA
# provider needs. libcuda.so.1 belongs to the driver: the NVIDIA runtime mounts it from the host.
COPY --from=build-gpu /app/publish/libonnxruntime_providers_cuda.so /app/publish/libonnxruntime_providers_shared.so /tmp/ort-check/
RUN missing="$(LD_LIBRARY_PATH="/tmp/ort-check${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        ldd /tmp/ort-check/libonnxruntime_providers_cuda.so | awk '/not found/ && $1 != "libcuda.so.1" { print $1 }')" \
 && rm -rf /tmp/ort-check \
 && if [ -n "$missing" ]; then \
        echo "libonnxruntime_providers_cuda.so needs libraries this base image lacks:" $missing >&2; \
        echo "build with --build-arg CUDA_IMAGE=nvidia/cuda:<the CUDA version they belong to>-cudnn-runtime-ubuntu24.04" >&2; \
        exit 1; \
    fi
# From here on as in service-cpu, but for the provider: Cuda fails start-up with a clear message
# when no GPU is visible, instead of quietly running on CPU.
WORKDIR /app
RUN install -d -o "$APP_UID" -g "$APP_UID" /app/data
ENV ModelRepository__Provider=Cuda \
    ASPNETCORE_HTTP_PORTS=8080 \
    Serve__GrpcPort=8001 \
    ModelRepository__Path=/app/models \
    FeatureStore__SqlitePath=/app/data/features.db
USER $APP_UID
VOLUME ["/app/data"]
# 8080: REST (/v1, /v2, health, metrics); 8001: the Open Inference Protocol over gRPC (plain-text HTTP/2).
EXPOSE 8080 8001
HEALTHCHECK --interval=15s --timeout=3s --start-period=120s --retries=3 \
    CMD ["bash", "-c", "exec 3<>\"/dev/tcp/127.0.0.1/${ASPNETCORE_HTTP_PORTS%%[;,]*}\" && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]
ENTRYPOINT ["dotnet", "MultiHeadServe.dll"]

# ---------------------------------------------------------------------------------------------
# The images: the service stage plus the application and models (files owned by root).
FROM service-gpu AS gpu
COPY --from=build-gpu /app/publish/ /app/
COPY --from=build-gpu /src/models/ /app/models/

FROM service-cpu AS cpu-from-publish
COPY --from=published /app/publish/ /app/
COPY --from=published /src/models/ /app/models/

# Last, so a build without --target makes this one.
FROM service-cpu AS cpu
COPY --from=build-cpu /app/publish/ /app/
COPY --from=build-cpu /src/models/ /app/models/
