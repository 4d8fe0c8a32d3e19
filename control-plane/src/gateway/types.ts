import type { MessageInitShape } from '@bufbuild/protobuf';
import type { agentv1 } from '@cphone/proto';
import type { Deps } from '../deps.js';

/** Stream sessions a host's sfu must end now (cphone.agent.v1.StreamRevocation). */
export interface StreamRevocationInit {
  sessionId?: string;
  deviceId?: string;
  tenantId?: string;
  /** UPPER_SNAKE_CASE, e.g. REVOKED. */
  reason: string;
  /** Shown to the viewer. */
  message: string;
  /** Tokens of the matched device or tenant issued before this no longer admit a join. */
  issuedBefore?: Date;
}

/** What the gateway is built from: everything the services share except itself. */
export type GatewayDeps = Omit<Deps, 'gateway'>;

/**
 * The kinds of command the API can send, with their payloads (the proto's Command.kind oneof), as
 * messages or plain init objects: `{ case: 'shell', value: { command: 'id' } }`.
 */
export type CommandKind = Exclude<
  MessageInitShape<typeof agentv1.CommandSchema>['kind'],
  { case: undefined } | undefined
>;

/**
 * What the rest of the control plane needs from the agent gateway. Desired state is read from the
 * store by the gateway; callers only say that a host's set changed after their transaction commits.
 */
export interface AgentGateway {
  /** The host's desired device set changed (already committed): push the delta if it is connected. */
  desiredChanged(hostId: string): void;
  /**
   * Sends a command to the host's agent and resolves with its result. Rejects with
   * DeadlineExceededError past the deadline and UnavailableError when the host is not connected or
   * its stream drops while the command is pending.
   */
  command(
    hostId: string,
    deviceId: string,
    kind: CommandKind,
    deadline: Date,
  ): Promise<agentv1.CommandResult>;
  /**
   * Tells the host's agent it is being drained (the work itself arrives as desired-state changes).
   * Returns false when the host has no live stream on this replica.
   */
  drain(hostId: string, reason: string, deadline?: Date): boolean;
  /**
   * Ends the host's live stream with UNAUTHENTICATED (its credential was revoked or the host deleted):
   * the agent's next Hello is checked again. Returns false when the host has no live stream here.
   */
  disconnect(hostId: string, reason: string): boolean;
  /** Hosts with a live stream on this replica. */
  connectedHosts(): string[];
  /**
   * Tells the host's agent to end stream sessions now (on whichever replica holds its stream; a
   * host not connected learns of sessions revoked in force when it says Hello).
   */
  revokeStreams(hostId: string, revocation: StreamRevocationInit): void;
  /** The stream token keys changed: every agent connected here gets the new set. */
  streamKeysChanged(): void;
  /** The CA certificate (PEM) agents trust; undefined when the operator's cert came without a CA file. */
  readonly caPem: string | undefined;
  /** The bound gRPC port. */
  readonly port: number;
  close(): Promise<void>;
}
