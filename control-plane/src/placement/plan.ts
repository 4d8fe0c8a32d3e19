// A plan is what the applier commits in one transaction: devices to place (new ones, or existing
// ones moving host) and devices releasing their host, plus what a power change asks of the quota.
// Creates, starts, deletions, losses, migrations and drains all submit plans; nothing else writes
// the host ledger or a device's host (Nomad's plan/plan-apply split).
import type { Insertable } from 'kysely';
import type { ImageRequirements, Resources, Strategy } from '../scheduler/index.js';
import type { DeviceStateName, DeviceTable } from '../store/schema.js';
import type { QuotaUse } from '../tenants/admission.js';

/** What the scheduler needs to place one device. */
export interface Ask {
  /** The device's resources; `devices` is 1. */
  readonly resources: Resources;
  readonly image: ImageRequirements;
  /** Host labels to match, the GPU label included when the spec asks for the host GPU. */
  readonly nodeSelector: Readonly<Record<string, string>>;
  readonly strategy: Strategy;
  readonly spreadTenant: boolean;
  /** Only this host (an operator's pin). */
  readonly pinHostId?: string | undefined;
}

/** The row of a device to create, but for what the plan decides (host, state, times). */
export type NewDeviceRow = Omit<
  Insertable<DeviceTable>,
  'host_id' | 'state' | 'create_time' | 'update_time' | 'state_change_time' | 'tenant_id'
> & { id: string; desired_power: 'running' | 'stopped' };

export interface NewDevice {
  readonly row: NewDeviceRow;
  readonly ask: Ask;
}

/** An existing device moving to a host (a drain's MIGRATE, or a re-placement after its host went). */
export interface Move {
  readonly deviceId: string;
  readonly tenantId: string;
  /** Its host now, whose allocation it releases; null when it has none (its host was deleted). */
  readonly fromHostId: string | null;
  /** Its state now (read under the device's row lock); it becomes SCHEDULED on the new host. */
  readonly fromState: DeviceStateName;
  readonly ask: Ask;
  /** The event's reason, e.g. MIGRATED. */
  readonly reason: string;
  /** Who moved it, for the event message (e.g. "a drain"). */
  readonly by: string;
}

/** A device no longer holding its host's resources (its deletion completed, or its host went). */
export interface Release {
  readonly deviceId: string;
  readonly hostId: string;
  readonly resources: Resources;
  /** Also clear the device's host (the host itself is being deleted). */
  readonly unassign?: boolean;
}

export interface Plan {
  /** The tenant whose quota admits the plan; required when it creates devices or starts some. */
  readonly tenantId?: string;
  /** Placed all or none, in this order. */
  readonly creates?: readonly NewDevice[];
  readonly moves?: readonly Move[];
  readonly releases?: readonly Release[];
  /** Quota asked beyond the creates (a StartDevice asks one running device and its resources). */
  readonly admit?: QuotaUse;
  /** Varies where spread scans start, so concurrent plans sample different hosts. */
  readonly seed?: string;
}
