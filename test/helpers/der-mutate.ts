/**
 * Mutations of a DER structure for differential and robustness tests of its readers: byte
 * edits (which mostly break the framing) and element edits (delete, duplicate, swap, retag,
 * replace the content of one element, or graft an element from another structure), after
 * which every enclosing length is written again, so the result is well-framed DER and
 * reaches the structure's reader rather than the framing check. With a seeded `random`
 * (helpers/rng.ts), the same seed makes the same mutations.
 */
import { tlv } from '../../src/pki/der.ts';

/** An element of a parsed tree: its tag, content, and children when constructed. */
interface El {
  tag: number;
  content: Uint8Array;
  children?: El[];
}

/** Reads well-formed DER (single-byte tags, definite lengths) into a tree. */
function parse(der: Uint8Array, at = 0, end = der.length): El[] {
  const out: El[] = [];
  while (at < end) {
    const tag = der[at]!;
    let len = der[at + 1]!;
    let start = at + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
      start += n;
    }
    const content = der.subarray(start, start + len);
    out.push(tag & 0x20 ? { tag, content, children: parse(der, start, start + len) } : { tag, content });
    at = start + len;
  }
  return out;
}

function encode(el: El): Uint8Array {
  return el.children ? tlv(el.tag, ...el.children.map(encode)) : tlv(el.tag, el.content);
}

/** Every element of the tree with the list that holds it, depth first. */
function slots(list: El[], out: Array<{ list: El[]; i: number }> = []): Array<{ list: El[]; i: number }> {
  list.forEach((el, i) => {
    out.push({ list, i });
    if (el.children) slots(el.children, out);
  });
  return out;
}

/** Tags worth trying: universal types CMP uses, context tags [0]..[9] both ways, and junk. */
const TAGS = [
  0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a, 0x0c, 0x13, 0x17, 0x18, 0x30, 0x31, 0x80, 0x81, 0x82, 0x84, 0x88, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4,
  0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xb4, 0xb9, 0x00, 0x24, 0x1f,
];

/**
 * One mutation of `der` (one DER element); `donors` are other structures whose elements may
 * be grafted in. Returns the new bytes.
 */
export function mutateDer(der: Uint8Array, random: (n: number) => number, donors: Uint8Array[] = []): Uint8Array {
  const kind = random(10);
  if (kind < 3) {
    // A byte edit: framing errors, mostly.
    const at = random(der.length);
    const out = Array.from(der);
    switch (random(4)) {
      case 0:
        out[at] = random(256);
        break;
      case 1:
        out[at] = TAGS[random(TAGS.length)]!;
        break;
      case 2:
        out.splice(at, 1);
        break;
      default:
        out.splice(at, 0, random(256));
    }
    return Uint8Array.from(out);
  }
  const tree = parse(der);
  const all = slots(tree).filter((s) => s.list !== tree);
  if (all.length === 0) return der;
  const { list, i } = all[random(all.length)]!;
  const el = list[i]!;
  switch (kind) {
    case 3:
      list.splice(i, 1);
      break;
    case 4:
      list.splice(i, 0, el);
      break;
    case 5:
      if (i + 1 < list.length) [list[i], list[i + 1]] = [list[i + 1]!, el];
      else list.splice(i, 1);
      break;
    case 6: {
      // Retag: constructed stays constructed (its children), primitive stays primitive.
      const tag = TAGS[random(TAGS.length)]!;
      list[i] = el.children && tag & 0x20 ? { ...el, tag } : { tag, content: el.children ? encodeChildren(el) : el.content };
      break;
    }
    case 7: {
      const content = new Uint8Array(random(6)).map(() => random(256));
      list[i] = { tag: el.tag & ~0x20, content };
      break;
    }
    case 8: {
      // Shorten or lengthen a primitive's content by one octet.
      if (!el.children) {
        const c = el.content;
        list[i] = { tag: el.tag, content: random(2) && c.length ? c.subarray(0, c.length - 1) : Uint8Array.of(...c, random(256)) };
      } else list.splice(i, 1);
      break;
    }
    default: {
      const donor = donors.length ? donors[random(donors.length)]! : der;
      const from = slots(parse(donor));
      const graft = from[random(from.length)]!;
      list[i] = graft.list[graft.i]!;
    }
  }
  return encode(tree[0]!);
}

function encodeChildren(el: El): Uint8Array {
  return Buffer.concat(el.children!.map(encode));
}
