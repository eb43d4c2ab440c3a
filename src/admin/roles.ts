/**
 * The console's roles and what each may do (modelled on emCA's five roles). The admin API
 * checks the permission of every route against this matrix (src/admin/api.ts); the pages
 * and menus follow it too, but hiding a button is never the protection. The README's
 * "Operator console" section documents the same matrix; test/integration/admin-api.test.ts
 * walks every route with every role and holds its own copy of the expectation.
 */
export const ROLES = ['ca-admin', 'admin', 'officer', 'auditor', 'operator'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_TITLES: Record<Role, string> = {
  'ca-admin': 'CA Administrator',
  admin: 'Administrator',
  officer: 'Officer',
  auditor: 'Auditor',
  operator: 'Operator',
};

export const PERMISSIONS = {
  'dashboard:read': 'dashboard: certificates by state, issuance, expiry, stuck requests, CRL/OCSP freshness, health',
  'hierarchy:read': 'CA hierarchy, CA certificates and chains',
  'keys:read': 'key stores: where the CA, archive and audit keys are',
  'certificates:read': 'search and view certificates, download them',
  'certificates:manage': 'revoke, hold, release and renew certificates',
  'requests:read': 'ACME orders, EST/CMP enrollments and the approvals queue',
  'requests:manage': 'retry and cancel orders, approve and reject enrollments',
  'crls:read': 'CRLs and OCSP freshness',
  'crls:manage': 'sign a new CRL and renew due OCSP responses now',
  'keys:recover': 'recover archived private keys (EST serverkeygen)',
  'reports:read': 'certificate, CRL and statistics reports (table, CSV, JSON)',
  'cas:manage': 'create, import, roll over and revoke CAs',
  'profiles:read': 'certificate, key and CRL profiles and their versions',
  'profiles:manage': 'create, clone, edit and retire certificate, key and CRL profiles',
  'applications:read': 'external applications: EST clients, CMP clients, EAB keys',
  'applications:manage': 'register, disable, enable and remove EST clients; create EAB keys',
  'users:read': 'console users, API tokens, the role matrix',
  'users:manage': 'create, disable and enable users, reset passwords, bind certificates, issue and revoke API tokens',
  'settings:read': 'effective settings of listeners, revocation, ACME and EST',
  'audit:read': 'audit log, its verification and signed checkpoints',
  'logs:read': 'application logs of the dev stack',
  'health:read': 'health of Postgres, Temporal and the workers',
  'backup:read': 'list backups and the backup recipient key',
  'backup:manage': 'create and download backups (encrypted to the recipient key: whoever makes them cannot open them)',
  'backup:recipient': 'set the backup recipient key, to which every backup is encrypted',
  'notifications:read': 'notification channels and thresholds, what was sent, dead letters',
  'notifications:manage': 'send test notices, retry dead-lettered deliveries',
} as const;
export type Permission = keyof typeof PERMISSIONS;

const ALL_READ: Permission[] = (Object.keys(PERMISSIONS) as Permission[]).filter((p) => p.endsWith(':read'));

/**
 * CA Administrator: users and roles, settings, the backup recipient, the CAs (create, import, roll over,
 * revoke), everything read. Administrator: profiles, external applications, EAB keys. Officer: certificate actions, approvals, CRLs,
 * OCSP, key recovery. Auditor: read-only certificates, reports and the audit log.
 * Operator: hierarchy, health, backup (made for the recipient: an Operator cannot open one).
 */
export const MATRIX: Record<Role, readonly Permission[]> = {
  'ca-admin': [...ALL_READ, 'users:manage', 'backup:recipient', 'cas:manage'],
  admin: [
    'dashboard:read',
    'hierarchy:read',
    'keys:read',
    'certificates:read',
    'requests:read',
    'crls:read',
    'reports:read',
    'profiles:read',
    'profiles:manage',
    'applications:read',
    'applications:manage',
    'settings:read',
    'health:read',
    'notifications:read',
    'notifications:manage',
  ],
  officer: [
    'dashboard:read',
    'hierarchy:read',
    'keys:read',
    'certificates:read',
    'certificates:manage',
    'requests:read',
    'requests:manage',
    'crls:read',
    'crls:manage',
    'keys:recover',
    'reports:read',
    'profiles:read',
  ],
  auditor: [
    'dashboard:read',
    'hierarchy:read',
    'certificates:read',
    'requests:read',
    'crls:read',
    'reports:read',
    'profiles:read',
    'audit:read',
  ],
  operator: ['dashboard:read', 'hierarchy:read', 'health:read', 'logs:read', 'backup:read', 'backup:manage'],
};

export function isRole(s: unknown): s is Role {
  return typeof s === 'string' && (ROLES as readonly string[]).includes(s);
}

export function can(role: Role, permission: Permission): boolean {
  return MATRIX[role].includes(permission);
}

/** The roles that hold a permission (for the OpenAPI document and error messages). */
export function rolesWith(permission: Permission): Role[] {
  return ROLES.filter((r) => can(r, permission));
}
