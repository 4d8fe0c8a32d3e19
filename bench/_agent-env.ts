// The environment of the agent child (_agent-overhead-agent.ts): enrolled with the control plane
// child over gRPC/TLS, its phones in the phone process. Each bench adds its own settings.
import { join } from 'node:path';

export interface AgentChildEnv {
  readonly hostId: string;
  readonly credential: string;
  readonly grpcPort: number;
  /** The control plane's CA, written to a file. */
  readonly caFile: string;
  /** The bench's folder: the agent's data dir is `agent` in it. */
  readonly dir: string;
  /** The phone process's control API. */
  readonly phonesUrl: string;
}

export const agentChildEnv = (e: AgentChildEnv): Record<string, string> => ({
  CPHONE_HOST_ID: e.hostId,
  CPHONE_HOST_CREDENTIAL: e.credential,
  CPHONE_CONTROL_PLANE: `127.0.0.1:${e.grpcPort}`,
  CPHONE_CA_FILE: e.caFile,
  CPHONE_TLS_SERVER_NAME: 'localhost',
  CPHONE_RUNTIME: 'sim',
  CPHONE_AGENT_DATA_DIR: join(e.dir, 'agent'),
  CPHONE_AGENT_HTTP_PORT: '0',
  CPHONE_ARCH: 'arm64',
  AGENT_OVERHEAD_PHONES_URL: e.phonesUrl,
});
