/**
 * A small client of Kubernetes' Container Runtime Interface (`runtime.v1`),
 * what kubelet speaks to containerd: the RuntimeService and ImageService
 * calls the CRI tests make, over containerd's unix socket, with npm's
 * `@grpc/grpc-js` and `@grpc/proto-loader` (pinned in deno.json, locked in
 * deno.lock) reading the API definition as it is (cri-api-v1.proto beside
 * this file: kubernetes/cri-api at 791729b, `pkg/apis/runtime/v1/api.proto`,
 * Apache-2.0, LICENSE.cri-api).
 *
 * Messages are plain objects with the proto's own field names
 * (`pod_sandbox_id`), enums by name (`"NODE"`, `"CONTAINER_EXITED"`), int64
 * as numbers; only the fields the tests use are typed. Every call has a
 * deadline, so a runtime that hangs fails the test instead of stalling it.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PROTO = fileURLToPath(new URL("./cri-api-v1.proto", import.meta.url));

export type NamespaceMode = "POD" | "CONTAINER" | "NODE" | "TARGET";

export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  hostname?: string;
  log_directory?: string;
  labels?: Record<string, string>;
  linux?: {
    cgroup_parent?: string;
    security_context?: { namespace_options?: { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode } };
  };
}

export interface ContainerConfig {
  metadata: { name: string; attempt?: number };
  image: { image: string };
  command?: string[];
  args?: string[];
  envs?: { key: string; value: string }[];
  log_path?: string;
  labels?: Record<string, string>;
  linux?: Record<string, unknown>;
}

/** kubelet's resources for a container (LinuxContainerResources): 0 or absent is unset. */
export interface LinuxContainerResources {
  cpu_period?: number;
  cpu_quota?: number;
  cpu_shares?: number;
  memory_limit_in_bytes?: number;
  memory_swap_limit_in_bytes?: number;
  oom_score_adj?: number;
  cpuset_cpus?: string;
  cpuset_mems?: string;
}

export type ContainerState = "CONTAINER_CREATED" | "CONTAINER_RUNNING" | "CONTAINER_EXITED" | "CONTAINER_UNKNOWN";

export interface ContainerStatus {
  id: string;
  state: ContainerState;
  exit_code: number;
  reason: string;
  message: string;
  log_path: string;
  created_at: number;
  started_at: number;
  finished_at: number;
}

export interface Container {
  id: string;
  pod_sandbox_id: string;
  metadata: { name: string };
  state: ContainerState;
}

export interface PodSandbox {
  id: string;
  metadata: { name: string; uid: string; namespace: string };
  state: "SANDBOX_READY" | "SANDBOX_NOTREADY";
}

export interface ExecSyncResponse {
  stdout: Uint8Array;
  stderr: Uint8Array;
  exit_code: number;
}

export interface Image {
  id: string;
  repo_tags: string[];
}

/** A CRI call that failed: gRPC's status code and details, with the call's name. */
export class CriError extends Error {
  override name = "CriError";
  constructor(readonly call: string, readonly code: number, readonly details: string) {
    super(`CRI ${call} failed: ${grpc.status[code] ?? code}: ${details}`);
  }
}

type Callback = (error: grpc.ServiceError | null, response: unknown) => void;
type Unary = (request: unknown, options: grpc.CallOptions, callback: Callback) => void;

let definition: grpc.GrpcObject | undefined;
function services(): { runtime: grpc.ServiceClientConstructor; image: grpc.ServiceClientConstructor } {
  definition ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true }),
  );
  const v1 = (definition.runtime as grpc.GrpcObject).v1 as grpc.GrpcObject;
  return {
    runtime: v1.RuntimeService as grpc.ServiceClientConstructor,
    image: v1.ImageService as grpc.ServiceClientConstructor,
  };
}

/** The CRI services of one endpoint; `close()` when done. */
export class CriClient {
  readonly #runtime: grpc.Client;
  readonly #image: grpc.Client;

  /** `socket`: the path of containerd's grpc socket. */
  constructor(readonly socket: string, readonly timeoutMs = 60_000) {
    const { runtime, image } = services();
    this.#runtime = new runtime(`unix://${socket}`, grpc.credentials.createInsecure());
    this.#image = new image(`unix://${socket}`, grpc.credentials.createInsecure());
  }

  #call<T>(client: grpc.Client, method: string, request: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    const fn = (client as unknown as Record<string, Unary>)[method];
    if (typeof fn !== "function") throw new Error(`no CRI method ${method}`);
    return new Promise<T>((resolve, reject) => {
      fn.call(client, request, { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error) reject(new CriError(method, error.code, error.details));
        else resolve(response as T);
      });
    });
  }

  async imageStatus(image: string): Promise<Image | null> {
    return (await this.#call<{ image: Image | null }>(this.#image, "ImageStatus", { image: { image } })).image;
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler: string): Promise<string> {
    const response = await this.#call<{ pod_sandbox_id: string }>(this.#runtime, "RunPodSandbox", {
      config,
      runtime_handler: runtimeHandler,
    });
    return response.pod_sandbox_id;
  }

  async stopPodSandbox(podSandboxId: string, timeoutMs?: number): Promise<void> {
    await this.#call(this.#runtime, "StopPodSandbox", { pod_sandbox_id: podSandboxId }, timeoutMs);
  }

  async removePodSandbox(podSandboxId: string): Promise<void> {
    await this.#call(this.#runtime, "RemovePodSandbox", { pod_sandbox_id: podSandboxId });
  }

  async listPodSandbox(): Promise<PodSandbox[]> {
    return (await this.#call<{ items: PodSandbox[] }>(this.#runtime, "ListPodSandbox", {})).items;
  }

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig) {
    const response = await this.#call<{ container_id: string }>(this.#runtime, "CreateContainer", {
      pod_sandbox_id: podSandboxId,
      config,
      sandbox_config: sandboxConfig,
    });
    return response.container_id;
  }

  async startContainer(containerId: string): Promise<void> {
    await this.#call(this.#runtime, "StartContainer", { container_id: containerId });
  }

  /** StopContainer: SIGTERM (or the image's stop signal), SIGKILL after `timeoutSeconds`; the deadline a little more. */
  async stopContainer(containerId: string, timeoutSeconds: number): Promise<void> {
    await this.#call(
      this.#runtime,
      "StopContainer",
      { container_id: containerId, timeout: timeoutSeconds },
      (timeoutSeconds + 10) * 1000,
    );
  }

  async removeContainer(containerId: string): Promise<void> {
    await this.#call(this.#runtime, "RemoveContainer", { container_id: containerId });
  }

  async containerStatus(containerId: string): Promise<ContainerStatus> {
    const response = await this.#call<{ status: ContainerStatus }>(this.#runtime, "ContainerStatus", {
      container_id: containerId,
    });
    return response.status;
  }

  async listContainers(podSandboxId?: string): Promise<Container[]> {
    const filter = podSandboxId ? { pod_sandbox_id: podSandboxId } : {};
    return (await this.#call<{ containers: Container[] }>(this.#runtime, "ListContainers", { filter })).containers;
  }

  /** UpdateContainerResources: containerd's shim runs the runtime's `update --resources=-` with them. */
  async updateContainerResources(containerId: string, linux: LinuxContainerResources): Promise<void> {
    await this.#call(this.#runtime, "UpdateContainerResources", { container_id: containerId, linux });
  }

  /** Runs `cmd` in the container; `timeoutSeconds` is the CRI's own limit (0: none), the deadline a little more. */
  execSync(containerId: string, cmd: string[], timeoutSeconds = 10): Promise<ExecSyncResponse> {
    return this.#call(
      this.#runtime,
      "ExecSync",
      { container_id: containerId, cmd, timeout: timeoutSeconds },
      timeoutSeconds ? (timeoutSeconds + 10) * 1000 : this.timeoutMs,
    );
  }

  /** Closes both channels: no timer or socket of gRPC's outlives the client. */
  close(): void {
    this.#runtime.close();
    this.#image.close();
  }
}
