/**
 * General messages (RFC 9810 5.3.19, RFC 9483 4.3): what a device asks the CA before or
 * between enrollments. Answered from the CA's own data (no workflow): CA certificates,
 * root CA key update, the certificate request template of the alias's profile, CRLs, the
 * key types the profile accepts. Info types this server does not offer are listed back in
 * an unsupportedOIDs item.
 */
import type { CmpAlias } from '../config/index.ts';
import { getProfile } from '../config/index.ts';
import * as cas from '../db/repos/cas.ts';
import { caUrls } from '../ca/urls.ts';
import { issuingCaName } from '../ca/authority.ts';
import * as revocation from '../db/repos/revocation.ts';
import {
  CRLStatus,
  CertReqTemplateContent,
  CertTemplate,
  INFO_TYPES,
  InfoTypeAndValue,
  REG_CTRL,
  RootCaKeyUpdateContent,
  algorithmIdentifier,
  derSequence,
  fromDer,
  int,
  keySpec,
  oidSequence,
  utf8Sequence,
  derSequenceItems,
} from '../pki/cmp/index.ts';
import { describeCertificate, describeCrl } from '../pki/index.ts';
import { cmpError } from './errors.ts';
import type { CmpDeps } from './api.ts';

const EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
const CURVE_OIDS: Record<string, string> = { 'P-256': '1.2.840.10045.3.1.7', 'P-384': '1.3.132.0.34', 'P-521': '1.3.132.0.35' };

export async function generalMessage(deps: CmpDeps, alias: CmpAlias, items: InfoTypeAndValue[]): Promise<InfoTypeAndValue[]> {
  if (items.length === 0) throw cmpError('cmp.request', 'the genm asks for nothing (no InfoTypeAndValue)');
  const profile = getProfile(deps.config, alias.profile);
  const caName = issuingCaName(deps.config, alias.caName, profile);
  const out: InfoTypeAndValue[] = [];
  const unsupported: string[] = [];
  for (const item of items) {
    switch (item.infoType) {
      case INFO_TYPES.caCerts: {
        const chain = await cas.issuingChain(deps.pool, caName, { includeRoot: true });
        out.push(new InfoTypeAndValue(item.infoType, derSequence(chain)));
        break;
      }
      case INFO_TYPES.rootCaKeyUpdate: {
        // RFC 9483 4.3.2: the new root certificate and the link certificates while the
        // alias's root is being rolled over; absent when no update is there.
        const root = (await cas.chainPath(deps.pool, caName)).at(-1);
        const update = root?.role === 'root' ? await cas.rootKeyUpdate(deps.pool, root.name) : null;
        out.push(
          new InfoTypeAndValue(
            item.infoType,
            update ? new RootCaKeyUpdateContent(update.newWithNew, update.newWithOld, update.oldWithNew).toDer() : undefined,
          ),
        );
        break;
      }
      case INFO_TYPES.caKeyUpdateInfo:
        // The deprecated form (RFC 4210): not offered; the value is absent.
        out.push(new InfoTypeAndValue(item.infoType));
        break;
      case INFO_TYPES.certReqTemplate:
        out.push(new InfoTypeAndValue(item.infoType, certReqTemplate(profile.keys).toDer()));
        break;
      case INFO_TYPES.signKeyPairTypes:
        out.push(new InfoTypeAndValue(item.infoType, derSequence(keyAlgorithms(profile.keys, true))));
        break;
      case INFO_TYPES.encKeyPairTypes:
        out.push(new InfoTypeAndValue(item.infoType, derSequence(keyAlgorithms(profile.keys, false))));
        break;
      case INFO_TYPES.currentCRL: {
        const active = await cas.get(deps.pool, caName);
        const crl = active && (await revocation.latestCrl(deps.pool, caName, active.generation));
        out.push(new InfoTypeAndValue(item.infoType, crl ? new Uint8Array(crl.der) : undefined));
        break;
      }
      case INFO_TYPES.crlStatusList:
        out.push(await crls(deps, item.infoValue));
        break;
      case INFO_TYPES.suppLangTags:
        out.push(new InfoTypeAndValue(item.infoType, utf8Sequence(['en'])));
        break;
      default:
        unsupported.push(item.infoType);
    }
  }
  if (unsupported.length) out.push(new InfoTypeAndValue(INFO_TYPES.unsupportedOIDs, oidSequence(unsupported)));
  return out;
}

/** Key types the profile accepts, as AlgorithmIdentifiers (EC: one per curve). */
function keyAlgorithms(keys: ReturnType<typeof getProfile>['keys'], signing: boolean): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const c of keys.ec?.curves ?? []) if (CURVE_OIDS[c]) out.push(algorithmIdentifier(EC_PUBLIC_KEY, CURVE_OIDS[c]));
  if (keys.rsa) out.push(algorithmIdentifier(RSA_ENCRYPTION, 'null'));
  if (signing && keys.ed25519) out.push(algorithmIdentifier('1.3.101.112'));
  if (signing && keys.ed448) out.push(algorithmIdentifier('1.3.101.113'));
  return out;
}

/** RFC 9483 4.3.3: an (unrestricted) template and the key types as keySpec controls. */
function certReqTemplate(keys: ReturnType<typeof getProfile>['keys']): CertReqTemplateContent {
  const spec = [];
  for (const c of keys.ec?.curves ?? [])
    if (CURVE_OIDS[c]) spec.push(keySpec(REG_CTRL.algId, algorithmIdentifier(EC_PUBLIC_KEY, CURVE_OIDS[c])));
  if (keys.rsa) spec.push(keySpec(REG_CTRL.rsaKeyLen, int(keys.rsa.minBits)));
  return new CertReqTemplateContent(new CertTemplate(), spec.length ? spec : undefined);
}

/**
 * crlStatusList -> crls (RFC 9483 4.3.4): for each CRL source (our CRL URL as
 * distribution point, or a CA name as issuer) the latest CRL when it is newer than the
 * client's thisUpdate; the value is absent when the client's CRLs are all current.
 */
async function crls(deps: CmpDeps, value: Uint8Array | undefined): Promise<InfoTypeAndValue> {
  if (!value) throw cmpError('cmp.request', 'crlStatusList must carry a list of CRLStatus');
  const statuses = derSequenceItems(value, 'CRLStatusList').map((d) => CRLStatus.read(fromDer(d, 'CRLStatus')));
  const all = await cas.allCertifiedKeys(deps.pool);
  const found: Uint8Array[] = [];
  for (const st of statuses) {
    const raw = Buffer.from(st.source.dpn ?? st.source.issuer ?? []);
    // The newest key generation first: a CA name as issuer means its current CRL.
    const ca = [...all].reverse().find((k) => {
      const url = caUrls(deps.config, k.caName, k.generation).crl!;
      return raw.includes(Buffer.from(url)) || raw.includes(Buffer.from(describeCertificate(k.certDer).subjectDer));
    });
    if (!ca) throw cmpError('cmp.request', 'a CRLStatus names a CRL source this CA does not publish', 'notFound');
    const crl = await revocation.latestCrl(deps.pool, ca.caName, ca.generation);
    if (!crl) continue;
    if (st.thisUpdate && describeCrl(crl.der).thisUpdate.getTime() <= st.thisUpdate.getTime()) continue;
    found.push(new Uint8Array(crl.der));
  }
  return new InfoTypeAndValue(INFO_TYPES.crls, found.length ? derSequence(found) : undefined);
}
