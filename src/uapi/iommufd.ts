// Tables of include/uapi/linux/iommufd.h (Linux 7.2): struct layouts, constants and ioctl numbers.
import { defStruct, _IO } from './layout.js';

export const IOMMUFD_TYPE = 0x3b;
export const IOMMUFD_CMD_BASE = 0x80;
export const IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE;
export const IOMMUFD_CMD_IOAS_ALLOC = 0x81;
export const IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82;
export const IOMMUFD_CMD_IOAS_COPY = 0x83;
export const IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84;
export const IOMMUFD_CMD_IOAS_MAP = 0x85;
export const IOMMUFD_CMD_IOAS_UNMAP = 0x86;
export const IOMMUFD_CMD_OPTION = 0x87;
export const IOMMUFD_CMD_VFIO_IOAS = 0x88;
export const IOMMUFD_CMD_HWPT_ALLOC = 0x89;
export const IOMMUFD_CMD_GET_HW_INFO = 0x8a;
export const IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b;
export const IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c;
export const IOMMUFD_CMD_HWPT_INVALIDATE = 0x8d;
export const IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e;
export const IOMMUFD_CMD_IOAS_MAP_FILE = 0x8f;
export const IOMMUFD_CMD_VIOMMU_ALLOC = 0x90;
export const IOMMUFD_CMD_VDEVICE_ALLOC = 0x91;
export const IOMMUFD_CMD_IOAS_CHANGE_PROCESS = 0x92;
export const IOMMUFD_CMD_VEVENTQ_ALLOC = 0x93;
export const IOMMUFD_CMD_HW_QUEUE_ALLOC = 0x94;

export const iommu_destroy = defStruct('iommu_destroy', [
  ['size', 'u32'],
  ['id', 'u32'],
]);

export const IOMMU_DESTROY = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY); // 0x3b80

export const iommu_ioas_alloc = defStruct('iommu_ioas_alloc', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['out_ioas_id', 'u32'],
]);

export const IOMMU_IOAS_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC); // 0x3b81

export const iommu_iova_range = defStruct('iommu_iova_range', [
  ['start', 'u64'],
  ['last', 'u64'],
]);

export const iommu_ioas_iova_ranges = defStruct('iommu_ioas_iova_ranges', [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['num_iovas', 'u32'],
  ['__reserved', 'u32'],
  ['allowed_iovas', 'u64'],
  ['out_iova_alignment', 'u64'],
]);

export const IOMMU_IOAS_IOVA_RANGES = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES); // 0x3b84

export const iommu_ioas_allow_iovas = defStruct('iommu_ioas_allow_iovas', [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['num_iovas', 'u32'],
  ['__reserved', 'u32'],
  ['allowed_iovas', 'u64'],
]);

export const IOMMU_IOAS_ALLOW_IOVAS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOW_IOVAS); // 0x3b82
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;

export const iommu_ioas_map = defStruct('iommu_ioas_map', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['ioas_id', 'u32'],
  ['__reserved', 'u32'],
  ['user_va', 'u64'],
  ['length', 'u64'],
  ['iova', 'u64'],
]);

export const IOMMU_IOAS_MAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP); // 0x3b85

export const iommu_ioas_map_file = defStruct('iommu_ioas_map_file', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['ioas_id', 'u32'],
  ['fd', 's32'],
  ['start', 'u64'],
  ['length', 'u64'],
  ['iova', 'u64'],
]);

export const IOMMU_IOAS_MAP_FILE = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP_FILE); // 0x3b8f

export const iommu_ioas_copy = defStruct('iommu_ioas_copy', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['dst_ioas_id', 'u32'],
  ['src_ioas_id', 'u32'],
  ['length', 'u64'],
  ['dst_iova', 'u64'],
  ['src_iova', 'u64'],
]);

export const IOMMU_IOAS_COPY = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_COPY); // 0x3b83

export const iommu_ioas_unmap = defStruct('iommu_ioas_unmap', [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['iova', 'u64'],
  ['length', 'u64'],
]);

export const IOMMU_IOAS_UNMAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP); // 0x3b86
export const IOMMU_OPTION_RLIMIT_MODE = 0;
export const IOMMU_OPTION_HUGE_PAGES = 1;
export const IOMMU_OPTION_OP_SET = 0;
export const IOMMU_OPTION_OP_GET = 1;

export const iommu_option = defStruct('iommu_option', [
  ['size', 'u32'],
  ['option_id', 'u32'],
  ['op', 'u16'],
  ['__reserved', 'u16'],
  ['object_id', 'u32'],
  ['val64', 'u64'],
]);

export const IOMMU_OPTION = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION); // 0x3b87
export const IOMMU_VFIO_IOAS_GET = 0;
export const IOMMU_VFIO_IOAS_SET = 1;
export const IOMMU_VFIO_IOAS_CLEAR = 2;

export const iommu_vfio_ioas = defStruct('iommu_vfio_ioas', [
  ['size', 'u32'],
  ['ioas_id', 'u32'],
  ['op', 'u16'],
  ['__reserved', 'u16'],
]);

export const IOMMU_VFIO_IOAS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VFIO_IOAS); // 0x3b88
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;
export const IOMMU_VTD_S1_SRE = 1 << 0;
export const IOMMU_VTD_S1_EAFE = 1 << 1;
export const IOMMU_VTD_S1_WPE = 1 << 2;

export const iommu_hwpt_vtd_s1 = defStruct('iommu_hwpt_vtd_s1', [
  ['flags', 'u64'],
  ['pgtbl_addr', 'u64'],
  ['addr_width', 'u32'],
  ['__reserved', 'u32'],
]);

export const iommu_hwpt_arm_smmuv3 = defStruct('iommu_hwpt_arm_smmuv3', [
  ['ste', { array: 'u64', count: 2 }],
]);

export const iommu_hwpt_amd_guest = defStruct('iommu_hwpt_amd_guest', [
  ['dte', { array: 'u64', count: 4 }],
]);

export const IOMMU_HWPT_DATA_NONE = 0;
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;
export const IOMMU_HWPT_DATA_AMD_GUEST = 3;

export const iommu_hwpt_alloc = defStruct('iommu_hwpt_alloc', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['dev_id', 'u32'],
  ['pt_id', 'u32'],
  ['out_hwpt_id', 'u32'],
  ['__reserved', 'u32'],
  ['data_type', 'u32'],
  ['data_len', 'u32'],
  ['data_uptr', 'u64'],
  ['fault_id', 'u32'],
  ['__reserved2', 'u32'],
]);

export const IOMMU_HWPT_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC); // 0x3b89
export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;

export const iommu_hw_info_vtd = defStruct('iommu_hw_info_vtd', [
  ['flags', 'u32'],
  ['__reserved', 'u32'],
  ['cap_reg', 'u64'],
  ['ecap_reg', 'u64'],
]);

export const iommu_hw_info_arm_smmuv3 = defStruct('iommu_hw_info_arm_smmuv3', [
  ['flags', 'u32'],
  ['__reserved', 'u32'],
  ['idr', { array: 'u32', count: 6 }],
  ['iidr', 'u32'],
  ['aidr', 'u32'],
]);

export const iommu_hw_info_tegra241_cmdqv = defStruct('iommu_hw_info_tegra241_cmdqv', [
  ['flags', 'u32'],
  ['version', 'u8'],
  ['log2vcmdqs', 'u8'],
  ['log2vsids', 'u8'],
  ['__reserved', 'u8'],
]);

export const iommu_hw_info_amd = defStruct('iommu_hw_info_amd', [
  ['efr', 'u64'],
  ['efr2', 'u64'],
]);

export const IOMMU_HW_INFO_TYPE_NONE = 0;
export const IOMMU_HW_INFO_TYPE_DEFAULT = 0;
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
export const IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV = 3;
export const IOMMU_HW_INFO_TYPE_AMD = 4;
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0;
export const IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1;
export const IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2;
export const IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1 << 3;
export const IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0;

export const iommu_hw_info = defStruct('iommu_hw_info', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['dev_id', 'u32'],
  ['data_len', 'u32'],
  ['data_uptr', 'u64'],
  ['in_data_type', 'u32'],
  ['out_data_type', 'u32', { offset: 24 }],
  ['out_max_pasid_log2', 'u8'],
  ['__reserved', { bytes: 3 }],
  ['out_capabilities', 'u64'],
]);

export const IOMMU_GET_HW_INFO = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO); // 0x3b8a
export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;

export const iommu_hwpt_set_dirty_tracking = defStruct('iommu_hwpt_set_dirty_tracking', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['hwpt_id', 'u32'],
  ['__reserved', 'u32'],
]);

export const IOMMU_HWPT_SET_DIRTY_TRACKING = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING); // 0x3b8b
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;

export const iommu_hwpt_get_dirty_bitmap = defStruct('iommu_hwpt_get_dirty_bitmap', [
  ['size', 'u32'],
  ['hwpt_id', 'u32'],
  ['flags', 'u32'],
  ['__reserved', 'u32'],
  ['iova', 'u64'],
  ['length', 'u64'],
  ['page_size', 'u64'],
  ['data', 'u64'],
]);

export const IOMMU_HWPT_GET_DIRTY_BITMAP = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP); // 0x3b8c
export const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;
export const IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1;
export const IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0;

export const iommu_hwpt_vtd_s1_invalidate = defStruct('iommu_hwpt_vtd_s1_invalidate', [
  ['addr', 'u64'],
  ['npages', 'u64'],
  ['flags', 'u32'],
  ['__reserved', 'u32'],
]);

export const iommu_viommu_arm_smmuv3_invalidate = defStruct('iommu_viommu_arm_smmuv3_invalidate', [
  ['cmd', { array: 'u64', count: 2 }],
]);

export const iommu_hwpt_invalidate = defStruct('iommu_hwpt_invalidate', [
  ['size', 'u32'],
  ['hwpt_id', 'u32'],
  ['data_uptr', 'u64'],
  ['data_type', 'u32'],
  ['entry_len', 'u32'],
  ['entry_num', 'u32'],
  ['__reserved', 'u32'],
]);

export const IOMMU_HWPT_INVALIDATE = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_INVALIDATE); // 0x3b8d
export const IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0;
export const IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1;
export const IOMMU_PGFAULT_PERM_READ = 1 << 0;
export const IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
export const IOMMU_PGFAULT_PERM_EXEC = 1 << 2;
export const IOMMU_PGFAULT_PERM_PRIV = 1 << 3;

export const iommu_hwpt_pgfault = defStruct('iommu_hwpt_pgfault', [
  ['flags', 'u32'],
  ['dev_id', 'u32'],
  ['pasid', 'u32'],
  ['grpid', 'u32'],
  ['perm', 'u32'],
  ['__reserved', 'u32'],
  ['addr', 'u64'],
  ['length', 'u32'],
  ['cookie', 'u32'],
]);

export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
export const IOMMUFD_PAGE_RESP_INVALID = 1;

export const iommu_hwpt_page_response = defStruct('iommu_hwpt_page_response', [
  ['cookie', 'u32'],
  ['code', 'u32'],
]);

export const iommu_fault_alloc = defStruct('iommu_fault_alloc', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['out_fault_id', 'u32'],
  ['out_fault_fd', 'u32'],
]);

export const IOMMU_FAULT_QUEUE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC); // 0x3b8e
export const IOMMU_VIOMMU_TYPE_DEFAULT = 0;
export const IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1;
export const IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV = 2;

export const iommu_viommu_tegra241_cmdqv = defStruct('iommu_viommu_tegra241_cmdqv', [
  ['out_vintf_mmap_offset', 'u64'],
  ['out_vintf_mmap_length', 'u64'],
]);

export const iommu_viommu_alloc = defStruct('iommu_viommu_alloc', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['type', 'u32'],
  ['dev_id', 'u32'],
  ['hwpt_id', 'u32'],
  ['out_viommu_id', 'u32'],
  ['data_len', 'u32'],
  ['__reserved', 'u32'],
  ['data_uptr', 'u64'],
]);

export const IOMMU_VIOMMU_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VIOMMU_ALLOC); // 0x3b90

export const iommu_vdevice_alloc = defStruct('iommu_vdevice_alloc', [
  ['size', 'u32'],
  ['viommu_id', 'u32'],
  ['dev_id', 'u32'],
  ['out_vdevice_id', 'u32'],
  ['virt_id', 'u64'],
]);

export const IOMMU_VDEVICE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VDEVICE_ALLOC); // 0x3b91

export const iommu_ioas_change_process = defStruct('iommu_ioas_change_process', [
  ['size', 'u32'],
  ['__reserved', 'u32'],
]);

export const IOMMU_IOAS_CHANGE_PROCESS = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_CHANGE_PROCESS); // 0x3b92
export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;

export const iommufd_vevent_header = defStruct('iommufd_vevent_header', [
  ['flags', 'u32'],
  ['sequence', 'u32'],
]);

export const IOMMU_VEVENTQ_TYPE_DEFAULT = 0;
export const IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1;
export const IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV = 2;

export const iommu_vevent_arm_smmuv3 = defStruct('iommu_vevent_arm_smmuv3', [
  ['evt', { array: 'u64', count: 4 }],
]);

export const iommu_vevent_tegra241_cmdqv = defStruct('iommu_vevent_tegra241_cmdqv', [
  ['lvcmdq_err_map', { array: 'u64', count: 2 }],
]);

export const iommu_veventq_alloc = defStruct('iommu_veventq_alloc', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['viommu_id', 'u32'],
  ['type', 'u32'],
  ['veventq_depth', 'u32'],
  ['out_veventq_id', 'u32'],
  ['out_veventq_fd', 'u32'],
  ['__reserved', 'u32'],
]);

export const IOMMU_VEVENTQ_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VEVENTQ_ALLOC); // 0x3b93
export const IOMMU_HW_QUEUE_TYPE_DEFAULT = 0;
export const IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV = 1;

export const iommu_hw_queue_alloc = defStruct('iommu_hw_queue_alloc', [
  ['size', 'u32'],
  ['flags', 'u32'],
  ['viommu_id', 'u32'],
  ['type', 'u32'],
  ['index', 'u32'],
  ['out_hw_queue_id', 'u32'],
  ['nesting_parent_iova', 'u64'],
  ['length', 'u64'],
]);

export const IOMMU_HW_QUEUE_ALLOC = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HW_QUEUE_ALLOC); // 0x3b94

// drivers/iommu/iommufd/iommufd_test.h (CONFIG_IOMMUFD_TEST only; struct iommu_test_cmd not modelled)
export const IOMMU_TEST_CMD = _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32); // 0x3ba0
