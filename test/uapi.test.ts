// Checks src/uapi against test/fixtures/uapi-layout.json, which tools/gen-uapi-fixture.c
// printed from the Linux 7.2 headers with gcc (x86-64).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as vfio from '../src/uapi/vfio.js';
import * as iommufd from '../src/uapi/iommufd.js';
import {
  IOCTLS,
  ioctlByName,
  ioctlByValue,
  ioctlName,
  sizeOfType,
  offsetofend,
  type FieldType,
  type StructDef,
} from '../src/uapi/index.js';

interface FixField {
  offset: number;
  size: number;
  signed?: boolean;
}
interface FixStruct {
  size: number;
  align: number;
  fields: Record<string, FixField>;
  flex?: { name: string; offset: number; elem_size: number };
}
interface Fixture {
  structs: Record<string, FixStruct>;
  constants: Record<string, number | string>;
  ioctls: Record<string, number>;
}

// from dist/test/ back to the source tree's test/fixtures/
const fixture = JSON.parse(
  readFileSync(fileURLToPath(new URL('../../test/fixtures/uapi-layout.json', import.meta.url)), 'utf8'),
) as Fixture;

function isStruct(v: unknown): v is StructDef<string> {
  return typeof v === 'object' && v !== null && 'fields' in v && 'byName' in v && 'size' in v;
}

function entries(mod: Record<string, unknown>) {
  const structs: Array<[string, StructDef<string>]> = [];
  const consts: Array<[string, number | bigint | string]> = [];
  for (const [k, v] of Object.entries(mod)) {
    if (isStruct(v)) structs.push([k, v]);
    else if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string') consts.push([k, v]);
    else assert.fail(`unexpected export ${k}`);
  }
  return { structs, consts };
}

const mods = { vfio, iommufd } as Record<string, Record<string, unknown>>;
const all = Object.values(mods).map(entries);
const tsStructs = new Map(all.flatMap((e) => e.structs));
const tsConsts = new Map(all.flatMap((e) => e.consts));

function isSigned(t: FieldType): boolean | undefined {
  if (typeof t !== 'string') return undefined;
  return t === 's32' || t === 's64';
}

for (const [modName, mod] of Object.entries(mods)) {
  const { structs, consts } = entries(mod);

  test(`${modName}: struct layouts match the C compiler`, () => {
    assert.ok(structs.length > 0);
    for (const [exportName, s] of structs) {
      assert.equal(s.name, exportName, `export ${exportName} is named ${s.name}`);
      const fx = fixture.structs[s.name];
      assert.ok(fx, `struct ${s.name} has no fixture entry`);
      assert.equal(s.size, fx.size, `sizeof(struct ${s.name})`);
      assert.equal(s.align, fx.align, `_Alignof(struct ${s.name})`);
      for (const f of s.fields) {
        const ff = fx.fields[f.name];
        assert.ok(ff, `${s.name}.${f.name} has no fixture entry`);
        assert.equal(f.offset, ff.offset, `offsetof(${s.name}, ${f.name})`);
        assert.equal(f.size, ff.size, `sizeof(${s.name}.${f.name})`);
        assert.equal(sizeOfType(f.type), ff.size);
        assert.equal(isSigned(f.type), ff.signed, `signedness of ${s.name}.${f.name}`);
        assert.equal(offsetofend(s, f.name), ff.offset + ff.size);
      }
      assert.deepEqual(
        Object.keys(fx.fields).sort(),
        s.fields.map((f) => f.name).sort(),
        `fields of ${s.name}`,
      );
      if (fx.flex) {
        assert.ok(s.flex, `${s.name} lacks flex ${fx.flex.name}`);
        assert.equal(s.flex.name, fx.flex.name);
        assert.equal(s.size, fx.flex.offset, `${s.name}.${fx.flex.name} starts at sizeof`);
        const elem = s.flex.elem;
        assert.equal(typeof elem === 'string' ? sizeOfType(elem) : elem.size, fx.flex.elem_size);
      } else {
        assert.equal(s.flex, undefined, `${s.name} has no flexible array in C`);
      }
    }
  });

  test(`${modName}: constants and ioctl numbers match the C compiler`, () => {
    assert.ok(consts.length > 0);
    for (const [name, v] of consts) {
      const fx = name in fixture.constants ? fixture.constants[name] : fixture.ioctls[name];
      assert.notEqual(fx, undefined, `${name} has no fixture entry`);
      if (typeof v === 'string') assert.equal(v, fx, name);
      else {
        assert.equal(typeof fx === 'string' ? 'number' : typeof fx, 'number');
        assert.equal(BigInt(v), BigInt(fx as number | string), name);
        if (typeof v === 'number') assert.ok(Number.isSafeInteger(v), `${name} is a safe integer`);
        else assert.ok(v > BigInt(Number.MAX_SAFE_INTEGER), `${name} needs to be a bigint`);
      }
    }
  });
}

test('every fixture entry is exported (nothing in the headers left out)', () => {
  for (const name of Object.keys(fixture.structs)) assert.ok(tsStructs.has(name), `struct ${name} not exported`);
  for (const name of [...Object.keys(fixture.constants), ...Object.keys(fixture.ioctls)])
    assert.ok(tsConsts.has(name), `${name} not exported`);
  const exported = [...tsStructs.keys(), ...tsConsts.keys()];
  assert.equal(new Set(exported).size, exported.length, 'no name exported twice');
});

test('spec table 4.3 sizes', () => {
  assert.equal(vfio.vfio_device_bind_iommufd.size, 24);
  assert.equal(iommufd.iommu_hwpt_alloc.size, 48);
  assert.equal(iommufd.iommu_hw_info.size, 40);
  assert.equal(vfio.vfio_iommu_type1_info_dma_avail.size, 12);
  assert.equal(vfio.vfio_irq_set.size, 20);
  assert.equal(vfio.vfio_pci_dependent_device.byName.devid.offset, 0);
  assert.equal(vfio.vfio_pci_dependent_device.byName.group_id.offset, 0);
  assert.equal(vfio.vfio_pci_dependent_device.byName.segment.offset, 4);
  assert.equal(offsetofend(iommufd.iommu_hw_info, '__reserved'), 32);
  assert.equal(offsetofend(iommufd.iommu_hwpt_alloc, '__reserved'), 24);
  assert.equal(offsetofend(iommufd.iommu_veventq_alloc, 'out_veventq_fd'), 28);
});

test('IOCTLS registry: every ioctl, with its number', () => {
  const names = IOCTLS.map((i) => i.name);
  assert.equal(new Set(names).size, names.length, 'names are unique');
  assert.deepEqual([...names].sort(), Object.keys(fixture.ioctls).sort());
  for (const i of IOCTLS) {
    assert.equal(i.value, fixture.ioctls[i.name], i.name);
    assert.equal(i.value, tsConsts.get(i.name), i.name);
    assert.equal(i.nr, i.value & 0xff);
    assert.equal(i.value >>> 8, 0x3b, `${i.name}: type ';', no size/direction bits`);
    assert.equal(ioctlByName(i.name), i);
    assert.ok(i.files.length > 0);
    if (i.struct) {
      assert.equal(i.arg, 'ptr');
      assert.ok(i.sizeField, `${i.name} names its size field`);
    }
    if (i.sizeField && i.struct) {
      const f = i.struct.byName[i.sizeField];
      assert.ok(f, `${i.struct.name}.${i.sizeField}`);
      assert.equal(f.offset, 0);
      assert.equal(f.type, 'u32');
    }
    if (i.name.startsWith('IOMMU_')) {
      assert.deepEqual(i.files, ['iommufd']);
      assert.equal(i.sizeField, 'size');
    } else if (i.struct) assert.equal(i.sizeField, 'argsz');
  }
  assert.equal(ioctlByName('VFIO_NOT_AN_IOCTL'), undefined);
});

test('IOCTLS registry: argument kinds and files', () => {
  const get = (n: string) => {
    const i = ioctlByName(n);
    assert.ok(i, n);
    return i;
  };
  assert.equal(get('VFIO_GET_API_VERSION').arg, 'none');
  assert.equal(get('VFIO_CHECK_EXTENSION').arg, 'value');
  assert.equal(get('VFIO_SET_IOMMU').arg, 'value');
  assert.equal(get('VFIO_GROUP_GET_DEVICE_FD').arg, 'string');
  assert.equal(get('VFIO_GROUP_UNSET_CONTAINER').arg, 'none');
  assert.equal(get('VFIO_DEVICE_RESET').arg, 'none');
  assert.equal(get('VFIO_DEVICE_BIND_IOMMUFD').struct, vfio.vfio_device_bind_iommufd);
  assert.equal(get('IOMMU_IOAS_MAP').struct, iommufd.iommu_ioas_map);
  for (const n of ['VFIO_GET_API_VERSION', 'VFIO_CHECK_EXTENSION', 'VFIO_SET_IOMMU', 'VFIO_IOMMU_MAP_DMA', 'VFIO_IOMMU_UNMAP_DMA', 'VFIO_IOMMU_GET_INFO'])
    assert.deepEqual(get(n).files, ['container', 'iommufd'], n);
  for (const i of IOCTLS) {
    if (i.name.startsWith('VFIO_GROUP_')) assert.deepEqual(i.files, ['group'], i.name);
    if (i.name.startsWith('VFIO_DEVICE_')) assert.deepEqual(i.files, ['device'], i.name);
  }
  assert.equal(get('IOMMU_TEST_CMD').nr, 0xa0);
});

test('ioctlByValue / ioctlName disambiguate shared numbers by file kind', () => {
  assert.equal(ioctlByValue(0x3b70, 'device')?.name, 'VFIO_DEVICE_GET_PCI_HOT_RESET_INFO');
  assert.equal(ioctlByValue(0x3b70, 'container')?.name, 'VFIO_IOMMU_GET_INFO');
  assert.equal(ioctlByValue(0x3b70, 'iommufd')?.name, 'VFIO_IOMMU_GET_INFO');
  assert.equal(ioctlByValue(0x3b70, 'group'), undefined);
  assert.ok(ioctlByValue(0x3b70));
  assert.equal(ioctlByValue(0x3b71, 'device')?.name, 'VFIO_DEVICE_PCI_HOT_RESET');
  assert.equal(ioctlByValue(0x3b71, 'container')?.name, 'VFIO_IOMMU_MAP_DMA');
  assert.equal(ioctlByValue(0x3b75, 'device')?.name, 'VFIO_DEVICE_FEATURE');
  assert.equal(ioctlByValue(0x3b75, 'container')?.name, 'VFIO_IOMMU_DIRTY_PAGES');
  assert.equal(ioctlByValue(0x3b80, 'iommufd')?.name, 'IOMMU_DESTROY');
  assert.equal(ioctlByValue(0x3b80, 'device'), undefined);
  assert.equal(ioctlByValue(0x1234), undefined);
  assert.equal(ioctlName(0x3b70, 'device'), 'VFIO_DEVICE_GET_PCI_HOT_RESET_INFO');
  assert.equal(ioctlName(0x3b70, 'container'), 'VFIO_IOMMU_GET_INFO');
  assert.equal(ioctlName(0x3b66, 'device'), 'VFIO_SET_IOMMU');
  assert.equal(ioctlName(0x3bff), '0x3bff');
  assert.equal(ioctlName(0xdeadbeef, 'iommufd'), '0xdeadbeef');
});
