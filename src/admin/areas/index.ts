/** Every area of the console: its API routes and its pages, in menu order. */
import type { ApiRoute } from '../api.ts';
import type { AuthSettings } from '../auth.ts';
import type { Page } from '../pages.ts';
import { applicationsArea } from './applications.ts';
import { auditArea } from './audit.ts';
import { backupArea } from './backup.ts';
import { certificatesArea } from './certificates.ts';
import { configurationArea } from './configuration.ts';
import { dashboardArea } from './dashboard.ts';
import { hierarchyArea } from './hierarchy.ts';
import { keyRecoveryArea } from './key-recovery.ts';
import { logsArea } from './logs.ts';
import { reportsArea } from './reports.ts';
import { requestsArea } from './requests.ts';
import { revocationArea } from './revocation.ts';
import { sessionArea } from './session.ts';
import { usersArea } from './users.ts';
import { notificationsArea } from './notifications.ts';

/** The menu, top to bottom (within the groups of MENU_GROUPS). */
const MENU_ORDER = [
  'dashboard',
  'hierarchy',
  'keys',
  'health',
  'certificates',
  'requests',
  'approvals',
  'crls',
  'ocsp',
  'key-recovery',
  'reports',
  'audit',
  'logs',
  'applications',
  'profiles',
  'users',
  'settings',
  'backup',
];

const rank = (p: Page) => (p.menu ? MENU_ORDER.indexOf(p.menu.id) : MENU_ORDER.length);

export function consoleAreas(settings: AuthSettings): { routes: ApiRoute[]; pages: Page[] } {
  const areas = [
    sessionArea(settings),
    dashboardArea(),
    hierarchyArea(),
    certificatesArea(),
    requestsArea(),
    revocationArea(),
    keyRecoveryArea(),
    reportsArea(),
    auditArea(),
    logsArea(),
    applicationsArea(),
    configurationArea(),
    notificationsArea(),
    usersArea(),
    backupArea(),
  ];
  const pages = areas.flatMap((a) => a.pages).sort((a, b) => rank(a) - rank(b));
  return { routes: areas.flatMap((a) => a.routes), pages };
}
