// Tables of include/uapi/linux/vfio.h (Linux 7.2): struct layouts, constants and ioctl numbers.
import { defStruct, _IO } from './layout.js';

export const VFIO_API_VERSION = 0;
export const VFIO_TYPE1_IOMMU = 1;
export const VFIO_SPAPR_TCE_IOMMU = 2;
export const VFIO_TYPE1v2_IOMMU = 3;
export const VFIO_DMA_CC_IOMMU = 4;
export const VFIO_EEH = 5;
export const __VFIO_RESERVED_TYPE1_NESTING_IOMMU = 6;
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
export const VFIO_NOIOMMU_IOMMU = 8;
export const VFIO_UNMAP_ALL = 9;
export const VFIO_UPDATE_VADDR = 10;
export const VFIO_TYPE = 0x3b;
export const VFIO_BASE = 100;

export const vfio_info_cap_header = defStruct('vfio_info_cap_header', [
  ['id', 'u16'],
  ['version', 'u16'],
  ['next', 'u32'],
]);

export const VFIO_GET_API_VERSION = _IO(VFIO_TYPE, VFIO_BASE + 0); // 0x3b64
export const VFIO_CHECK_EXTENSION = _IO(VFIO_TYPE, VFIO_BASE + 1); // 0x3b65
export const VFIO_SET_IOMMU = _IO(VFIO_TYPE, VFIO_BASE + 2); // 0x3b66

export const vfio_group_status = defStruct('vfio_group_status', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
]);

export const VFIO_GROUP_FLAGS_VIABLE = 1 << 0;
export const VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1;
export const VFIO_GROUP_GET_STATUS = _IO(VFIO_TYPE, VFIO_BASE + 3); // 0x3b67
export const VFIO_GROUP_SET_CONTAINER = _IO(VFIO_TYPE, VFIO_BASE + 4); // 0x3b68
export const VFIO_GROUP_UNSET_CONTAINER = _IO(VFIO_TYPE, VFIO_BASE + 5); // 0x3b69
export const VFIO_GROUP_GET_DEVICE_FD = _IO(VFIO_TYPE, VFIO_BASE + 6); // 0x3b6a

export const vfio_device_info = defStruct('vfio_device_info', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['num_regions', 'u32'],
  ['num_irqs', 'u32'],
  ['cap_offset', 'u32'],
  ['pad', 'u32'],
]);

export const VFIO_DEVICE_FLAGS_RESET = 1 << 0;
export const VFIO_DEVICE_FLAGS_PCI = 1 << 1;
export const VFIO_DEVICE_FLAGS_PLATFORM = 1 << 2;
export const VFIO_DEVICE_FLAGS_AMBA = 1 << 3;
export const VFIO_DEVICE_FLAGS_CCW = 1 << 4;
export const VFIO_DEVICE_FLAGS_AP = 1 << 5;
export const VFIO_DEVICE_FLAGS_FSL_MC = 1 << 6;
export const VFIO_DEVICE_FLAGS_CAPS = 1 << 7;
export const VFIO_DEVICE_FLAGS_CDX = 1 << 8;
export const VFIO_DEVICE_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 7); // 0x3b6b
export const VFIO_DEVICE_API_PCI_STRING = 'vfio-pci';
export const VFIO_DEVICE_API_PLATFORM_STRING = 'vfio-platform';
export const VFIO_DEVICE_API_AMBA_STRING = 'vfio-amba';
export const VFIO_DEVICE_API_CCW_STRING = 'vfio-ccw';
export const VFIO_DEVICE_API_AP_STRING = 'vfio-ap';
export const VFIO_DEVICE_INFO_CAP_ZPCI_BASE = 1;
export const VFIO_DEVICE_INFO_CAP_ZPCI_GROUP = 2;
export const VFIO_DEVICE_INFO_CAP_ZPCI_UTIL = 3;
export const VFIO_DEVICE_INFO_CAP_ZPCI_PFIP = 4;
export const VFIO_DEVICE_INFO_CAP_PCI_ATOMIC_COMP = 5;

export const vfio_device_info_cap_pci_atomic_comp = defStruct('vfio_device_info_cap_pci_atomic_comp', [
  ['header', vfio_info_cap_header],
  ['flags', 'u32'],
  ['reserved', 'u32'],
]);

export const VFIO_PCI_ATOMIC_COMP32 = 1 << 0;
export const VFIO_PCI_ATOMIC_COMP64 = 1 << 1;
export const VFIO_PCI_ATOMIC_COMP128 = 1 << 2;

export const vfio_region_info = defStruct('vfio_region_info', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['index', 'u32'],
  ['cap_offset', 'u32'],
  ['size', 'u64'],
  ['offset', 'u64'],
]);

export const VFIO_REGION_INFO_FLAG_READ = 1 << 0;
export const VFIO_REGION_INFO_FLAG_WRITE = 1 << 1;
export const VFIO_REGION_INFO_FLAG_MMAP = 1 << 2;
export const VFIO_REGION_INFO_FLAG_CAPS = 1 << 3;
export const VFIO_DEVICE_GET_REGION_INFO = _IO(VFIO_TYPE, VFIO_BASE + 8); // 0x3b6c
export const VFIO_REGION_INFO_CAP_SPARSE_MMAP = 1;

export const vfio_region_sparse_mmap_area = defStruct('vfio_region_sparse_mmap_area', [
  ['offset', 'u64'],
  ['size', 'u64'],
]);

export const vfio_region_info_cap_sparse_mmap = defStruct('vfio_region_info_cap_sparse_mmap', [
  ['header', vfio_info_cap_header],
  ['nr_areas', 'u32'],
  ['reserved', 'u32'],
], { flex: { name: 'areas', elem: vfio_region_sparse_mmap_area } });

export const VFIO_REGION_INFO_CAP_TYPE = 2;

export const vfio_region_info_cap_type = defStruct('vfio_region_info_cap_type', [
  ['header', vfio_info_cap_header],
  ['type', 'u32'],
  ['subtype', 'u32'],
]);

export const VFIO_REGION_TYPE_PCI_VENDOR_TYPE = 0x80000000; // (1 << 31) in C; the value as the __u32 type field holds it
export const VFIO_REGION_TYPE_PCI_VENDOR_MASK = 0xffff;
export const VFIO_REGION_TYPE_GFX = 1;
export const VFIO_REGION_TYPE_CCW = 2;
export const VFIO_REGION_TYPE_MIGRATION_DEPRECATED = 3;
export const VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION = 1;
export const VFIO_REGION_SUBTYPE_INTEL_IGD_HOST_CFG = 2;
export const VFIO_REGION_SUBTYPE_INTEL_IGD_LPC_CFG = 3;
export const VFIO_REGION_SUBTYPE_NVIDIA_NVLINK2_RAM = 1;
export const VFIO_REGION_SUBTYPE_IBM_NVLINK2_ATSD = 1;
export const VFIO_REGION_SUBTYPE_GFX_EDID = 1;

export const vfio_region_gfx_edid = defStruct('vfio_region_gfx_edid', [
  ['edid_offset', 'u32'],
  ['edid_max_size', 'u32'],
  ['edid_size', 'u32'],
  ['max_xres', 'u32'],
  ['max_yres', 'u32'],
  ['link_state', 'u32'],
]);

export const VFIO_DEVICE_GFX_LINK_STATE_UP = 1;
export const VFIO_DEVICE_GFX_LINK_STATE_DOWN = 2;
export const VFIO_REGION_SUBTYPE_CCW_ASYNC_CMD = 1;
export const VFIO_REGION_SUBTYPE_CCW_SCHIB = 2;
export const VFIO_REGION_SUBTYPE_CCW_CRW = 3;
export const VFIO_REGION_SUBTYPE_MIGRATION_DEPRECATED = 1;

export const vfio_device_migration_info = defStruct('vfio_device_migration_info', [
  ['device_state', 'u32'],
  ['reserved', 'u32'],
  ['pending_bytes', 'u64'],
  ['data_offset', 'u64'],
  ['data_size', 'u64'],
]);

export const VFIO_DEVICE_STATE_V1_STOP = 0;
export const VFIO_DEVICE_STATE_V1_RUNNING = 1 << 0;
export const VFIO_DEVICE_STATE_V1_SAVING = 1 << 1;
export const VFIO_DEVICE_STATE_V1_RESUMING = 1 << 2;
export const VFIO_DEVICE_STATE_MASK = VFIO_DEVICE_STATE_V1_RUNNING | VFIO_DEVICE_STATE_V1_SAVING | VFIO_DEVICE_STATE_V1_RESUMING;
export const VFIO_REGION_INFO_CAP_MSIX_MAPPABLE = 3;
export const VFIO_REGION_INFO_CAP_NVLINK2_SSATGT = 4;

export const vfio_region_info_cap_nvlink2_ssatgt = defStruct('vfio_region_info_cap_nvlink2_ssatgt', [
  ['header', vfio_info_cap_header],
  ['tgt', 'u64'],
]);

export const VFIO_REGION_INFO_CAP_NVLINK2_LNKSPD = 5;

export const vfio_region_info_cap_nvlink2_lnkspd = defStruct('vfio_region_info_cap_nvlink2_lnkspd', [
  ['header', vfio_info_cap_header],
  ['link_speed', 'u32'],
  ['__pad', 'u32'],
]);

export const vfio_irq_info = defStruct('vfio_irq_info', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['index', 'u32'],
  ['count', 'u32'],
]);

export const VFIO_IRQ_INFO_EVENTFD = 1 << 0;
export const VFIO_IRQ_INFO_MASKABLE = 1 << 1;
export const VFIO_IRQ_INFO_AUTOMASKED = 1 << 2;
export const VFIO_IRQ_INFO_NORESIZE = 1 << 3;
export const VFIO_DEVICE_GET_IRQ_INFO = _IO(VFIO_TYPE, VFIO_BASE + 9); // 0x3b6d

export const vfio_irq_set = defStruct('vfio_irq_set', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['index', 'u32'],
  ['start', 'u32'],
  ['count', 'u32'],
], { flex: { name: 'data', elem: 'u8' } });

export const VFIO_IRQ_SET_DATA_NONE = 1 << 0;
export const VFIO_IRQ_SET_DATA_BOOL = 1 << 1;
export const VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2;
export const VFIO_IRQ_SET_ACTION_MASK = 1 << 3;
export const VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4;
export const VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5;
export const VFIO_DEVICE_SET_IRQS = _IO(VFIO_TYPE, VFIO_BASE + 10); // 0x3b6e
export const VFIO_IRQ_SET_DATA_TYPE_MASK = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_DATA_BOOL | VFIO_IRQ_SET_DATA_EVENTFD;
export const VFIO_IRQ_SET_ACTION_TYPE_MASK = VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK | VFIO_IRQ_SET_ACTION_TRIGGER;
export const VFIO_DEVICE_RESET = _IO(VFIO_TYPE, VFIO_BASE + 11); // 0x3b6f
export const VFIO_PCI_BAR0_REGION_INDEX = 0;
export const VFIO_PCI_BAR1_REGION_INDEX = 1;
export const VFIO_PCI_BAR2_REGION_INDEX = 2;
export const VFIO_PCI_BAR3_REGION_INDEX = 3;
export const VFIO_PCI_BAR4_REGION_INDEX = 4;
export const VFIO_PCI_BAR5_REGION_INDEX = 5;
export const VFIO_PCI_ROM_REGION_INDEX = 6;
export const VFIO_PCI_CONFIG_REGION_INDEX = 7;
export const VFIO_PCI_VGA_REGION_INDEX = 8;
export const VFIO_PCI_NUM_REGIONS = 9;
export const VFIO_PCI_INTX_IRQ_INDEX = 0;
export const VFIO_PCI_MSI_IRQ_INDEX = 1;
export const VFIO_PCI_MSIX_IRQ_INDEX = 2;
export const VFIO_PCI_ERR_IRQ_INDEX = 3;
export const VFIO_PCI_REQ_IRQ_INDEX = 4;
export const VFIO_PCI_NUM_IRQS = 5;
export const VFIO_CCW_CONFIG_REGION_INDEX = 0;
export const VFIO_CCW_NUM_REGIONS = 1;
export const VFIO_CCW_IO_IRQ_INDEX = 0;
export const VFIO_CCW_CRW_IRQ_INDEX = 1;
export const VFIO_CCW_REQ_IRQ_INDEX = 2;
export const VFIO_CCW_NUM_IRQS = 3;
export const VFIO_AP_REQ_IRQ_INDEX = 0;
export const VFIO_AP_CFG_CHG_IRQ_INDEX = 1;
export const VFIO_AP_NUM_IRQS = 2;

export const vfio_pci_dependent_device = defStruct('vfio_pci_dependent_device', [
  ['group_id', 'u32'],
  ['devid', 'u32', { offset: 0 }],
  ['segment', 'u16'],
  ['bus', 'u8'],
  ['devfn', 'u8'],
]);

export const VFIO_PCI_DEVID_OWNED = 0;
export const VFIO_PCI_DEVID_NOT_OWNED = 0xffffffff; // -1 in C; the value as the __u32 devid field holds it

export const vfio_pci_hot_reset_info = defStruct('vfio_pci_hot_reset_info', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['count', 'u32'],
], { flex: { name: 'devices', elem: vfio_pci_dependent_device } });

export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID = 1 << 0;
export const VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED = 1 << 1;
export const VFIO_DEVICE_GET_PCI_HOT_RESET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 12); // 0x3b70

export const vfio_pci_hot_reset = defStruct('vfio_pci_hot_reset', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['count', 'u32'],
], { flex: { name: 'group_fds', elem: 's32' } });

export const VFIO_DEVICE_PCI_HOT_RESET = _IO(VFIO_TYPE, VFIO_BASE + 13); // 0x3b71

export const vfio_device_gfx_plane_info = defStruct('vfio_device_gfx_plane_info', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['drm_plane_type', 'u32'],
  ['drm_format', 'u32'],
  ['drm_format_mod', 'u64'],
  ['width', 'u32'],
  ['height', 'u32'],
  ['stride', 'u32'],
  ['size', 'u32'],
  ['x_pos', 'u32'],
  ['y_pos', 'u32'],
  ['x_hot', 'u32'],
  ['y_hot', 'u32'],
  ['region_index', 'u32'],
  ['dmabuf_id', 'u32', { offset: 56 }],
  ['reserved', 'u32'],
]);

export const VFIO_GFX_PLANE_TYPE_PROBE = 1 << 0;
export const VFIO_GFX_PLANE_TYPE_DMABUF = 1 << 1;
export const VFIO_GFX_PLANE_TYPE_REGION = 1 << 2;
export const VFIO_DEVICE_QUERY_GFX_PLANE = _IO(VFIO_TYPE, VFIO_BASE + 14); // 0x3b72
export const VFIO_DEVICE_GET_GFX_DMABUF = _IO(VFIO_TYPE, VFIO_BASE + 15); // 0x3b73

export const vfio_device_ioeventfd = defStruct('vfio_device_ioeventfd', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['offset', 'u64'],
  ['data', 'u64'],
  ['fd', 's32'],
  ['reserved', 'u32'],
]);

export const VFIO_DEVICE_IOEVENTFD_8 = 1 << 0;
export const VFIO_DEVICE_IOEVENTFD_16 = 1 << 1;
export const VFIO_DEVICE_IOEVENTFD_32 = 1 << 2;
export const VFIO_DEVICE_IOEVENTFD_64 = 1 << 3;
export const VFIO_DEVICE_IOEVENTFD_SIZE_MASK = 0xf;
export const VFIO_DEVICE_IOEVENTFD = _IO(VFIO_TYPE, VFIO_BASE + 16); // 0x3b74

export const vfio_device_feature = defStruct('vfio_device_feature', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
], { flex: { name: 'data', elem: 'u8' } });

export const VFIO_DEVICE_FEATURE_MASK = 0xffff;
export const VFIO_DEVICE_FEATURE_GET = 1 << 16;
export const VFIO_DEVICE_FEATURE_SET = 1 << 17;
export const VFIO_DEVICE_FEATURE_PROBE = 1 << 18;
export const VFIO_DEVICE_FEATURE = _IO(VFIO_TYPE, VFIO_BASE + 17); // 0x3b75

export const vfio_device_bind_iommufd = defStruct('vfio_device_bind_iommufd', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['iommufd', 's32'],
  ['out_devid', 'u32'],
  ['token_uuid_ptr', 'u64'],
]);

export const VFIO_DEVICE_BIND_FLAG_TOKEN = 1 << 0;
export const VFIO_DEVICE_BIND_IOMMUFD = _IO(VFIO_TYPE, VFIO_BASE + 18); // 0x3b76

export const vfio_device_attach_iommufd_pt = defStruct('vfio_device_attach_iommufd_pt', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['pt_id', 'u32'],
  ['pasid', 'u32'],
]);

export const VFIO_DEVICE_ATTACH_PASID = 1 << 0;
export const VFIO_DEVICE_ATTACH_IOMMUFD_PT = _IO(VFIO_TYPE, VFIO_BASE + 19); // 0x3b77

export const vfio_device_detach_iommufd_pt = defStruct('vfio_device_detach_iommufd_pt', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['pasid', 'u32'],
]);

export const VFIO_DEVICE_DETACH_PASID = 1 << 0;
export const VFIO_DEVICE_DETACH_IOMMUFD_PT = _IO(VFIO_TYPE, VFIO_BASE + 20); // 0x3b78
export const VFIO_DEVICE_FEATURE_PCI_VF_TOKEN = 0;

export const vfio_device_feature_migration = defStruct('vfio_device_feature_migration', [
  ['flags', 'u64'],
]);

export const VFIO_MIGRATION_STOP_COPY = 1 << 0;
export const VFIO_MIGRATION_P2P = 1 << 1;
export const VFIO_MIGRATION_PRE_COPY = 1 << 2;
export const VFIO_DEVICE_FEATURE_MIGRATION = 1;

export const vfio_device_feature_mig_state = defStruct('vfio_device_feature_mig_state', [
  ['device_state', 'u32'],
  ['data_fd', 's32'],
]);

export const VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE = 2;
export const VFIO_DEVICE_STATE_ERROR = 0;
export const VFIO_DEVICE_STATE_STOP = 1;
export const VFIO_DEVICE_STATE_RUNNING = 2;
export const VFIO_DEVICE_STATE_STOP_COPY = 3;
export const VFIO_DEVICE_STATE_RESUMING = 4;
export const VFIO_DEVICE_STATE_RUNNING_P2P = 5;
export const VFIO_DEVICE_STATE_PRE_COPY = 6;
export const VFIO_DEVICE_STATE_PRE_COPY_P2P = 7;
export const VFIO_DEVICE_STATE_NR = 8;

export const vfio_precopy_info = defStruct('vfio_precopy_info', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['initial_bytes', 'u64'],
  ['dirty_bytes', 'u64'],
]);

export const VFIO_PRECOPY_INFO_REINIT = 1 << 0;
export const VFIO_MIG_GET_PRECOPY_INFO = _IO(VFIO_TYPE, VFIO_BASE + 21); // 0x3b79
export const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY = 3;

export const vfio_device_low_power_entry_with_wakeup = defStruct('vfio_device_low_power_entry_with_wakeup', [
  ['wakeup_eventfd', 's32'],
  ['reserved', 'u32'],
]);

export const VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY_WITH_WAKEUP = 4;
export const VFIO_DEVICE_FEATURE_LOW_POWER_EXIT = 5;

export const vfio_device_feature_dma_logging_control = defStruct('vfio_device_feature_dma_logging_control', [
  ['page_size', 'u64'],
  ['num_ranges', 'u32'],
  ['__reserved', 'u32'],
  ['ranges', 'u64'],
]);

export const vfio_device_feature_dma_logging_range = defStruct('vfio_device_feature_dma_logging_range', [
  ['iova', 'u64'],
  ['length', 'u64'],
]);

export const VFIO_DEVICE_FEATURE_DMA_LOGGING_START = 6;
export const VFIO_DEVICE_FEATURE_DMA_LOGGING_STOP = 7;

export const vfio_device_feature_dma_logging_report = defStruct('vfio_device_feature_dma_logging_report', [
  ['iova', 'u64'],
  ['length', 'u64'],
  ['page_size', 'u64'],
  ['bitmap', 'u64'],
]);

export const VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT = 8;

export const vfio_device_feature_mig_data_size = defStruct('vfio_device_feature_mig_data_size', [
  ['stop_copy_length', 'u64'],
]);

export const VFIO_DEVICE_FEATURE_MIG_DATA_SIZE = 9;

export const vfio_device_feature_bus_master = defStruct('vfio_device_feature_bus_master', [
  ['op', 'u32'],
]);

export const VFIO_DEVICE_FEATURE_CLEAR_MASTER = 0;
export const VFIO_DEVICE_FEATURE_SET_MASTER = 1;
export const VFIO_DEVICE_FEATURE_BUS_MASTER = 10;
export const VFIO_DEVICE_FEATURE_DMA_BUF = 11;

export const vfio_region_dma_range = defStruct('vfio_region_dma_range', [
  ['offset', 'u64'],
  ['length', 'u64'],
]);

export const vfio_device_feature_dma_buf = defStruct('vfio_device_feature_dma_buf', [
  ['region_index', 'u32'],
  ['open_flags', 'u32'],
  ['flags', 'u32'],
  ['nr_ranges', 'u32'],
], { flex: { name: 'dma_ranges', elem: vfio_region_dma_range } });

export const VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2 = 12;

export const vfio_iommu_type1_info = defStruct('vfio_iommu_type1_info', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['iova_pgsizes', 'u64'],
  ['cap_offset', 'u32'],
  ['pad', 'u32'],
]);

export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;

export const vfio_iova_range = defStruct('vfio_iova_range', [
  ['start', 'u64'],
  ['end', 'u64'],
]);

export const vfio_iommu_type1_info_cap_iova_range = defStruct('vfio_iommu_type1_info_cap_iova_range', [
  ['header', vfio_info_cap_header],
  ['nr_iovas', 'u32'],
  ['reserved', 'u32'],
], { flex: { name: 'iova_ranges', elem: vfio_iova_range } });

export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;

export const vfio_iommu_type1_info_cap_migration = defStruct('vfio_iommu_type1_info_cap_migration', [
  ['header', vfio_info_cap_header],
  ['flags', 'u32'],
  ['pgsize_bitmap', 'u64'],
  ['max_dirty_bitmap_size', 'u64'],
]);

export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

export const vfio_iommu_type1_info_dma_avail = defStruct('vfio_iommu_type1_info_dma_avail', [
  ['header', vfio_info_cap_header],
  ['avail', 'u32'],
]);

export const VFIO_IOMMU_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 12); // 0x3b70

export const vfio_iommu_type1_dma_map = defStruct('vfio_iommu_type1_dma_map', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['vaddr', 'u64'],
  ['iova', 'u64'],
  ['size', 'u64'],
]);

export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;
export const VFIO_IOMMU_MAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 13); // 0x3b71

export const vfio_bitmap = defStruct('vfio_bitmap', [
  ['pgsize', 'u64'],
  ['size', 'u64'],
  ['data', 'u64'],
]);

export const vfio_iommu_type1_dma_unmap = defStruct('vfio_iommu_type1_dma_unmap', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['iova', 'u64'],
  ['size', 'u64'],
], { flex: { name: 'data', elem: 'u8' } });

export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;
export const VFIO_IOMMU_UNMAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 14); // 0x3b72
export const VFIO_IOMMU_ENABLE = _IO(VFIO_TYPE, VFIO_BASE + 15); // 0x3b73
export const VFIO_IOMMU_DISABLE = _IO(VFIO_TYPE, VFIO_BASE + 16); // 0x3b74

export const vfio_iommu_type1_dirty_bitmap = defStruct('vfio_iommu_type1_dirty_bitmap', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
], { flex: { name: 'data', elem: 'u8' } });

export const VFIO_IOMMU_DIRTY_PAGES_FLAG_START = 1 << 0;
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP = 1 << 1;
export const VFIO_IOMMU_DIRTY_PAGES_FLAG_GET_BITMAP = 1 << 2;

export const vfio_iommu_type1_dirty_bitmap_get = defStruct('vfio_iommu_type1_dirty_bitmap_get', [
  ['iova', 'u64'],
  ['size', 'u64'],
  ['bitmap', vfio_bitmap],
]);

export const VFIO_IOMMU_DIRTY_PAGES = _IO(VFIO_TYPE, VFIO_BASE + 17); // 0x3b75

export const vfio_iommu_spapr_tce_ddw_info = defStruct('vfio_iommu_spapr_tce_ddw_info', [
  ['pgsizes', 'u64'],
  ['max_dynamic_windows_supported', 'u32'],
  ['levels', 'u32'],
]);

export const vfio_iommu_spapr_tce_info = defStruct('vfio_iommu_spapr_tce_info', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['dma32_window_start', 'u32'],
  ['dma32_window_size', 'u32'],
  ['ddw', vfio_iommu_spapr_tce_ddw_info],
]);

export const VFIO_IOMMU_SPAPR_INFO_DDW = 1 << 0;
export const VFIO_IOMMU_SPAPR_TCE_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 12); // 0x3b70

export const vfio_eeh_pe_err = defStruct('vfio_eeh_pe_err', [
  ['type', 'u32'],
  ['func', 'u32'],
  ['addr', 'u64'],
  ['mask', 'u64'],
]);

export const vfio_eeh_pe_op = defStruct('vfio_eeh_pe_op', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['op', 'u32'],
  ['err', vfio_eeh_pe_err],
]);

export const VFIO_EEH_PE_DISABLE = 0;
export const VFIO_EEH_PE_ENABLE = 1;
export const VFIO_EEH_PE_UNFREEZE_IO = 2;
export const VFIO_EEH_PE_UNFREEZE_DMA = 3;
export const VFIO_EEH_PE_GET_STATE = 4;
export const VFIO_EEH_PE_STATE_NORMAL = 0;
export const VFIO_EEH_PE_STATE_RESET = 1;
export const VFIO_EEH_PE_STATE_STOPPED = 2;
export const VFIO_EEH_PE_STATE_STOPPED_DMA = 4;
export const VFIO_EEH_PE_STATE_UNAVAIL = 5;
export const VFIO_EEH_PE_RESET_DEACTIVATE = 5;
export const VFIO_EEH_PE_RESET_HOT = 6;
export const VFIO_EEH_PE_RESET_FUNDAMENTAL = 7;
export const VFIO_EEH_PE_CONFIGURE = 8;
export const VFIO_EEH_PE_INJECT_ERR = 9;
export const VFIO_EEH_PE_OP = _IO(VFIO_TYPE, VFIO_BASE + 21); // 0x3b79

export const vfio_iommu_spapr_register_memory = defStruct('vfio_iommu_spapr_register_memory', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['vaddr', 'u64'],
  ['size', 'u64'],
]);

export const VFIO_IOMMU_SPAPR_REGISTER_MEMORY = _IO(VFIO_TYPE, VFIO_BASE + 17); // 0x3b75
export const VFIO_IOMMU_SPAPR_UNREGISTER_MEMORY = _IO(VFIO_TYPE, VFIO_BASE + 18); // 0x3b76

export const vfio_iommu_spapr_tce_create = defStruct('vfio_iommu_spapr_tce_create', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['page_shift', 'u32'],
  ['__resv1', 'u32'],
  ['window_size', 'u64'],
  ['levels', 'u32'],
  ['__resv2', 'u32'],
  ['start_addr', 'u64'],
]);

export const VFIO_IOMMU_SPAPR_TCE_CREATE = _IO(VFIO_TYPE, VFIO_BASE + 19); // 0x3b77

export const vfio_iommu_spapr_tce_remove = defStruct('vfio_iommu_spapr_tce_remove', [
  ['argsz', 'u32'],
  ['flags', 'u32'],
  ['start_addr', 'u64'],
]);

export const VFIO_IOMMU_SPAPR_TCE_REMOVE = _IO(VFIO_TYPE, VFIO_BASE + 20); // 0x3b78
