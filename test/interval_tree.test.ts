// The interval tree against a plain sorted-array reference, with random operations (fast-check).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IntervalTree, Interval } from '../src/kernel/interval_tree.js';

function refFirst(ref: Interval[], s: bigint, l: bigint): Interval | undefined {
  return ref.filter((r) => r.start <= l && r.last >= s).sort((a, b) => (a.start < b.start ? -1 : 1))[0];
}

test('interval tree matches a sorted-array reference under random inserts, deletes and queries', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          op: fc.constantFrom('ins', 'del', 'q'),
          a: fc.bigInt({ min: 0n, max: 200n }),
          len: fc.bigInt({ min: 1n, max: 20n }),
        }),
        { maxLength: 200 },
      ),
      (ops) => {
        const t = new IntervalTree<Interval>();
        let ref: Interval[] = [];
        for (const o of ops) {
          const s = o.a;
          const l = o.a + o.len - 1n;
          if (o.op === 'ins') {
            if (refFirst(ref, s, l)) {
              assert.ok(t.first(s, l));
              continue;
            }
            assert.equal(t.first(s, l), undefined);
            const v = { start: s, last: l };
            t.insert(v);
            ref.push(v);
          } else if (o.op === 'del') {
            const hit = refFirst(ref, s, l);
            if (hit) {
              assert.equal(t.delete(hit), true);
              ref = ref.filter((r) => r !== hit);
            }
          } else {
            assert.equal(t.first(s, l), refFirst(ref, s, l));
            assert.deepEqual(
              t.range(s, l),
              ref.filter((r) => r.start <= l && r.last >= s).sort((a, b) => (a.start < b.start ? -1 : 1)),
            );
            assert.equal(t.find(s), ref.find((r) => r.start <= s && r.last >= s));
          }
          assert.equal(t.size, ref.length);
        }
        assert.deepEqual(t.all(), [...ref].sort((a, b) => (a.start < b.start ? -1 : 1)));
      },
    ),
    { numRuns: 300 },
  );
});

test('interval tree stays logarithmic: 100,000 inserts then lookups', () => {
  const t = new IntervalTree<Interval>();
  for (let i = 0n; i < 100_000n; i++) t.insert({ start: i * 0x2000n, last: i * 0x2000n + 0xfffn });
  assert.equal(t.size, 100_000);
  assert.deepEqual(t.find(0x2000n * 777n + 5n), { start: 0x2000n * 777n, last: 0x2000n * 777n + 0xfffn });
  assert.equal(t.find(0x2000n * 777n + 0x1000n), undefined);
});
