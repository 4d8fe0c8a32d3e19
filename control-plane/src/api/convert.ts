import { type Timestamp, timestampFromDate } from '@bufbuild/protobuf/wkt';
import { Role as RoleEnum } from '@cphone/proto';
import { InvalidArgumentError } from '../errors.js';
import type { Role } from '../store/schema.js';

export function ts(date: Date | null | undefined): Timestamp | undefined {
  return date ? timestampFromDate(date) : undefined;
}

/**
 * The Timestamp as a Date, its nanoseconds cut (not rounded) to milliseconds: timestampDate rounds,
 * so 9999-12-31T23:59:59.9995Z becomes 10000-01-01, which no Timestamp can carry back out, and
 * every later read of the row would fail to encode its response.
 */
export function dateOf(value: Timestamp | undefined): Date | undefined {
  return value ? new Date(Number(value.seconds) * 1000 + Math.floor(value.nanos / 1_000_000)) : undefined;
}

const ROLE_TO_PROTO: Record<Role, RoleEnum> = {
  platform_admin: RoleEnum.PLATFORM_ADMIN,
  ops: RoleEnum.OPS,
  tenant_admin: RoleEnum.TENANT_ADMIN,
  tenant_user: RoleEnum.TENANT_USER,
};

export function roleToProto(role: Role): RoleEnum {
  return ROLE_TO_PROTO[role];
}

export function roleFromProto(role: RoleEnum, field = 'role'): Role {
  const found = (Object.entries(ROLE_TO_PROTO) as [Role, RoleEnum][]).find(([, v]) => v === role);
  if (!found) throw new InvalidArgumentError(field, RoleEnum[role] ?? role, 'must be a role');
  return found[0];
}

type UndefinedKeys<T> = { [K in keyof T]-?: undefined extends T[K] ? K : never }[keyof T];

/** The object without its undefined properties, typed so protobuf-es inits accept it under exactOptionalPropertyTypes. */
export type Compact<T> = Omit<T, UndefinedKeys<T>> & { [K in UndefinedKeys<T>]?: Exclude<T[K], undefined> };

export function compact<T extends object>(value: T): Compact<T> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = v;
  return out as Compact<T>;
}
