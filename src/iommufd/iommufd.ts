// include/linux/iommufd.h: what the rest of the kernel (VFIO) uses of iommufd.

export { IommufdCtx, IommufdObject, iommufdCtxGet, iommufdCtxPut } from './object.js';
export {
  IOMMU_NO_PASID, IommufdDevice, IommufdGroup, iommufdCtxHasGroup, iommufdDeviceAttach, iommufdDeviceBind,
  iommufdDeviceDetach, iommufdDeviceReplace, iommufdDeviceUnbind, iommufdParams,
} from './device.js';
export { iommufdCtxFromFd, iommufdCtxFromFile, iommufdFops, iommufdInit } from './main.js';
export {
  iommufdVfioCompatIoasCreate, iommufdVfioCompatIoasGetId, iommufdVfioCompatSetNoIommu,
} from './vfio_compat.js';
