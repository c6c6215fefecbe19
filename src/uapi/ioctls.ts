// The registry of VFIO and iommufd ioctls: name, number, the files it is valid on, how its
// argument is passed and the struct it points to. Every face names and describes ioctls here.
import type { StructDef } from './layout.js';
import * as V from './vfio.js';
import * as I from './iommufd.js';

/**
 * 'value' = argument passed by value (CHECK_EXTENSION, SET_IOMMU); 'string' = pointer to a
 * NUL-terminated string (GROUP_GET_DEVICE_FD); 'none' = no argument (GET_API_VERSION,
 * UNSET_CONTAINER, DEVICE_RESET); 'ptr' = pointer to `struct` (or to a plain integer when
 * struct is absent).
 */
export type ArgKind = 'none' | 'value' | 'ptr' | 'string';
export type FileKind = 'container' | 'group' | 'device' | 'iommufd';

export interface IoctlInfo {
  name: string;
  value: number;
  nr: number;
  files: FileKind[];
  arg: ArgKind;
  struct?: StructDef<string>;
  /** name of the size field: 'argsz' for VFIO structs, 'size' for iommufd */
  sizeField?: 'argsz' | 'size';
}

const CONTAINER: FileKind[] = ['container', 'iommufd'];
const GROUP: FileKind[] = ['group'];
const DEVICE: FileKind[] = ['device'];
const SPAPR: FileKind[] = ['container'];
const IOMMUFD: FileKind[] = ['iommufd'];

function def(
  name: string,
  value: number,
  files: FileKind[],
  arg: ArgKind,
  struct?: StructDef<string>,
  sizeField?: 'argsz' | 'size',
): IoctlInfo {
  const info: IoctlInfo = { name, value, nr: value & 0xff, files, arg };
  if (struct) info.struct = struct;
  if (sizeField) info.sizeField = sizeField;
  return info;
}

const vfio = (name: string, value: number, files: FileKind[], struct: StructDef<string>) =>
  def(name, value, files, 'ptr', struct, 'argsz');
const iommufd = (name: string, value: number, struct?: StructDef<string>) =>
  def(name, value, IOMMUFD, 'ptr', struct, 'size');

/** Listed in header order; where numbers collide on the same file, the first entry wins a lookup. */
export const IOCTLS: readonly IoctlInfo[] = Object.freeze([
  // include/uapi/linux/vfio.h: container (and iommufd's VFIO compatibility)
  def('VFIO_GET_API_VERSION', V.VFIO_GET_API_VERSION, CONTAINER, 'none'),
  def('VFIO_CHECK_EXTENSION', V.VFIO_CHECK_EXTENSION, CONTAINER, 'value'),
  def('VFIO_SET_IOMMU', V.VFIO_SET_IOMMU, CONTAINER, 'value'),
  // group
  vfio('VFIO_GROUP_GET_STATUS', V.VFIO_GROUP_GET_STATUS, GROUP, V.vfio_group_status),
  def('VFIO_GROUP_SET_CONTAINER', V.VFIO_GROUP_SET_CONTAINER, GROUP, 'ptr'),
  def('VFIO_GROUP_UNSET_CONTAINER', V.VFIO_GROUP_UNSET_CONTAINER, GROUP, 'none'),
  def('VFIO_GROUP_GET_DEVICE_FD', V.VFIO_GROUP_GET_DEVICE_FD, GROUP, 'string'),
  // device
  vfio('VFIO_DEVICE_GET_INFO', V.VFIO_DEVICE_GET_INFO, DEVICE, V.vfio_device_info),
  vfio('VFIO_DEVICE_GET_REGION_INFO', V.VFIO_DEVICE_GET_REGION_INFO, DEVICE, V.vfio_region_info),
  vfio('VFIO_DEVICE_GET_IRQ_INFO', V.VFIO_DEVICE_GET_IRQ_INFO, DEVICE, V.vfio_irq_info),
  vfio('VFIO_DEVICE_SET_IRQS', V.VFIO_DEVICE_SET_IRQS, DEVICE, V.vfio_irq_set),
  def('VFIO_DEVICE_RESET', V.VFIO_DEVICE_RESET, DEVICE, 'none'),
  vfio('VFIO_DEVICE_GET_PCI_HOT_RESET_INFO', V.VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, DEVICE, V.vfio_pci_hot_reset_info),
  vfio('VFIO_DEVICE_PCI_HOT_RESET', V.VFIO_DEVICE_PCI_HOT_RESET, DEVICE, V.vfio_pci_hot_reset),
  vfio('VFIO_DEVICE_QUERY_GFX_PLANE', V.VFIO_DEVICE_QUERY_GFX_PLANE, DEVICE, V.vfio_device_gfx_plane_info),
  def('VFIO_DEVICE_GET_GFX_DMABUF', V.VFIO_DEVICE_GET_GFX_DMABUF, DEVICE, 'ptr'),
  vfio('VFIO_DEVICE_IOEVENTFD', V.VFIO_DEVICE_IOEVENTFD, DEVICE, V.vfio_device_ioeventfd),
  vfio('VFIO_DEVICE_FEATURE', V.VFIO_DEVICE_FEATURE, DEVICE, V.vfio_device_feature),
  vfio('VFIO_DEVICE_BIND_IOMMUFD', V.VFIO_DEVICE_BIND_IOMMUFD, DEVICE, V.vfio_device_bind_iommufd),
  vfio('VFIO_DEVICE_ATTACH_IOMMUFD_PT', V.VFIO_DEVICE_ATTACH_IOMMUFD_PT, DEVICE, V.vfio_device_attach_iommufd_pt),
  vfio('VFIO_DEVICE_DETACH_IOMMUFD_PT', V.VFIO_DEVICE_DETACH_IOMMUFD_PT, DEVICE, V.vfio_device_detach_iommufd_pt),
  // issued on the migration data file a device returns; listed under 'device'
  vfio('VFIO_MIG_GET_PRECOPY_INFO', V.VFIO_MIG_GET_PRECOPY_INFO, DEVICE, V.vfio_precopy_info),
  // type1 IOMMU backend (container, and iommufd's VFIO compatibility)
  vfio('VFIO_IOMMU_GET_INFO', V.VFIO_IOMMU_GET_INFO, CONTAINER, V.vfio_iommu_type1_info),
  vfio('VFIO_IOMMU_MAP_DMA', V.VFIO_IOMMU_MAP_DMA, CONTAINER, V.vfio_iommu_type1_dma_map),
  vfio('VFIO_IOMMU_UNMAP_DMA', V.VFIO_IOMMU_UNMAP_DMA, CONTAINER, V.vfio_iommu_type1_dma_unmap),
  vfio('VFIO_IOMMU_DIRTY_PAGES', V.VFIO_IOMMU_DIRTY_PAGES, CONTAINER, V.vfio_iommu_type1_dirty_bitmap),
  // SPAPR TCE backend (container only; numbers shared with type1)
  def('VFIO_IOMMU_ENABLE', V.VFIO_IOMMU_ENABLE, SPAPR, 'none'),
  def('VFIO_IOMMU_DISABLE', V.VFIO_IOMMU_DISABLE, SPAPR, 'none'),
  vfio('VFIO_IOMMU_SPAPR_TCE_GET_INFO', V.VFIO_IOMMU_SPAPR_TCE_GET_INFO, SPAPR, V.vfio_iommu_spapr_tce_info),
  vfio('VFIO_EEH_PE_OP', V.VFIO_EEH_PE_OP, SPAPR, V.vfio_eeh_pe_op),
  vfio('VFIO_IOMMU_SPAPR_REGISTER_MEMORY', V.VFIO_IOMMU_SPAPR_REGISTER_MEMORY, SPAPR, V.vfio_iommu_spapr_register_memory),
  vfio('VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY', V.VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY, SPAPR, V.vfio_iommu_spapr_register_memory),
  vfio('VFIO_IOMMU_SPAPR_TCE_CREATE', V.VFIO_IOMMU_SPAPR_TCE_CREATE, SPAPR, V.vfio_iommu_spapr_tce_create),
  vfio('VFIO_IOMMU_SPAPR_TCE_REMOVE', V.VFIO_IOMMU_SPAPR_TCE_REMOVE, SPAPR, V.vfio_iommu_spapr_tce_remove),
  // include/uapi/linux/iommufd.h
  iommufd('IOMMU_DESTROY', I.IOMMU_DESTROY, I.iommu_destroy),
  iommufd('IOMMU_IOAS_ALLOC', I.IOMMU_IOAS_ALLOC, I.iommu_ioas_alloc),
  iommufd('IOMMU_IOAS_ALLOW_IOVAS', I.IOMMU_IOAS_ALLOW_IOVAS, I.iommu_ioas_allow_iovas),
  iommufd('IOMMU_IOAS_COPY', I.IOMMU_IOAS_COPY, I.iommu_ioas_copy),
  iommufd('IOMMU_IOAS_IOVA_RANGES', I.IOMMU_IOAS_IOVA_RANGES, I.iommu_ioas_iova_ranges),
  iommufd('IOMMU_IOAS_MAP', I.IOMMU_IOAS_MAP, I.iommu_ioas_map),
  iommufd('IOMMU_IOAS_UNMAP', I.IOMMU_IOAS_UNMAP, I.iommu_ioas_unmap),
  iommufd('IOMMU_OPTION', I.IOMMU_OPTION, I.iommu_option),
  iommufd('IOMMU_VFIO_IOAS', I.IOMMU_VFIO_IOAS, I.iommu_vfio_ioas),
  iommufd('IOMMU_HWPT_ALLOC', I.IOMMU_HWPT_ALLOC, I.iommu_hwpt_alloc),
  iommufd('IOMMU_GET_HW_INFO', I.IOMMU_GET_HW_INFO, I.iommu_hw_info),
  iommufd('IOMMU_HWPT_SET_DIRTY_TRACKING', I.IOMMU_HWPT_SET_DIRTY_TRACKING, I.iommu_hwpt_set_dirty_tracking),
  iommufd('IOMMU_HWPT_GET_DIRTY_BITMAP', I.IOMMU_HWPT_GET_DIRTY_BITMAP, I.iommu_hwpt_get_dirty_bitmap),
  iommufd('IOMMU_HWPT_INVALIDATE', I.IOMMU_HWPT_INVALIDATE, I.iommu_hwpt_invalidate),
  iommufd('IOMMU_FAULT_QUEUE_ALLOC', I.IOMMU_FAULT_QUEUE_ALLOC, I.iommu_fault_alloc),
  iommufd('IOMMU_IOAS_MAP_FILE', I.IOMMU_IOAS_MAP_FILE, I.iommu_ioas_map_file),
  iommufd('IOMMU_VIOMMU_ALLOC', I.IOMMU_VIOMMU_ALLOC, I.iommu_viommu_alloc),
  iommufd('IOMMU_VDEVICE_ALLOC', I.IOMMU_VDEVICE_ALLOC, I.iommu_vdevice_alloc),
  iommufd('IOMMU_IOAS_CHANGE_PROCESS', I.IOMMU_IOAS_CHANGE_PROCESS, I.iommu_ioas_change_process),
  iommufd('IOMMU_VEVENTQ_ALLOC', I.IOMMU_VEVENTQ_ALLOC, I.iommu_veventq_alloc),
  iommufd('IOMMU_HW_QUEUE_ALLOC', I.IOMMU_HW_QUEUE_ALLOC, I.iommu_hw_queue_alloc),
  // drivers/iommu/iommufd/iommufd_test.h (struct iommu_test_cmd not modelled)
  iommufd('IOMMU_TEST_CMD', I.IOMMU_TEST_CMD),
]);

const byName = new Map<string, IoctlInfo>(IOCTLS.map((i) => [i.name, i]));
const byValue = new Map<number, IoctlInfo[]>();
for (const i of IOCTLS) {
  const list = byValue.get(i.value);
  if (list) list.push(i);
  else byValue.set(i.value, [i]);
}

export function ioctlByName(name: string): IoctlInfo | undefined {
  return byName.get(name);
}

/**
 * Several numbers are shared (0x3b70 = VFIO_DEVICE_GET_PCI_HOT_RESET_INFO on a device and
 * VFIO_IOMMU_GET_INFO on a container): disambiguate by file kind when given. With a file kind,
 * only ioctls valid on that kind of file match; without one, the first listed wins.
 */
export function ioctlByValue(value: number, file?: FileKind): IoctlInfo | undefined {
  const list = byValue.get(value >>> 0);
  if (!list) return undefined;
  return file === undefined ? list[0] : list.find((i) => i.files.includes(file));
}

/** The name (for the given file kind if it is valid there, else any), or '0x....' hex if unknown. */
export function ioctlName(value: number, file?: FileKind): string {
  const info = (file !== undefined ? ioctlByValue(value, file) : undefined) ?? ioctlByValue(value);
  return info ? info.name : '0x' + (value >>> 0).toString(16);
}
